"""Tools that are not benchmarks: loopback helpers, hostile inputs (bench/ and tests/ share them)."""
