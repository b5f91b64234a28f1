"""`python -m bench --list`: every benchmark script listed with what it measures."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOLS = {"__init__", "__main__", "machine", "report", "run_jobs", "gpu_pack", "e5_pack", "shards"}


def test_every_benchmark_is_listed_with_what_it_measures():
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = {line.split()[0]: line for line in out.splitlines() if line.startswith("bench/")}
    scripts = {f"bench/{p.name}" for p in (REPO / "bench").glob("*.py") if p.stem not in TOOLS}
    assert set(listed) == scripts
    for script, line in listed.items():
        assert len(line.split(None, 1)[1]) > 20, script  # a description, not an empty docstring


def test_a_result_is_stamped_with_the_commit_the_caller_names(monkeypatch):
    """On a lent GPU machine the tree travels over another checkout's .git: the commit the
    caller sent (TICKETML_COMMIT) is the one stamped, without a changes mark."""
    from bench.machine import stamp

    monkeypatch.setenv("TICKETML_COMMIT", "0123abc")
    assert stamp()["commit"] == "0123abc"
    monkeypatch.delenv("TICKETML_COMMIT")
    here = stamp()["commit"]
    assert here.split("+")[0] not in ("0123abc", "unknown") and len(here.split("+")[0]) == 40
