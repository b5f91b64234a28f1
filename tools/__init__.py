"""Tools that are not benchmarks: loopback helpers, hostile inputs (bench/ and tests/ share them),
and what a lent GPU machine lacks (gpu_pack, e5_pack, shards: wheels, encoders, data)."""
