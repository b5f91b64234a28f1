"""The benchmark index: `python -m bench --list` (or `make bench`) prints every script in bench/
with what it measures (its docstring's first line) and where it writes its result."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOT_BENCHMARKS = {
    "__init__",
    "__main__",
    "machine",
    "report",
    "run_jobs",
}


def index() -> list[tuple[str, str, str]]:
    """(script, first docstring line, result files it names) for each benchmark script."""
    rows = []
    for path in sorted(HERE.glob("*.py")):
        if path.stem in NOT_BENCHMARKS:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        results = sorted(set(re.findall(r"bench/results/[\w./<>{}-]+\.json", doc)))
        rows.append((f"bench/{path.name}", doc.splitlines()[0] if doc else "", ", ".join(results)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list the benchmarks (the default)")
    parser.parse_args()
    rows = index()
    width = max(len(r[0]) for r in rows)
    for script, what, results in rows:
        print(f"{script:<{width}}  {what}" + (f"  -> {results}" if results else ""))
    print(
        "\nnot benchmarks: bench/run_jobs.py (jobs side by side on a lent GPU), bench/report.py "
        "(the README's Benchmarks and Reliability sections from bench/results); what a GPU "
        "machine lacks travels with tools/gpu_pack.py, tools/e5_pack.py and tools/shards.py"
    )


if __name__ == "__main__":
    main()
