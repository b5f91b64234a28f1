"""`python -m bench --list`: every benchmark script listed with what it measures."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS = {"__init__", "__main__", "machine", "report", "run_jobs"}


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


def test_a_result_that_describes_itself_is_rendered_by_the_one_generic_function(tmp_path):
    import json

    import pytest

    from bench.machine import table
    from bench.report import benchmarks_page

    with pytest.raises(ValueError, match="needs 2 cells"):
        table("t", ["a", "b"], [[1, 2], [3]])
    result = {
        "tables": [table("Heads, 16 cores", ["engine", "rows"], [["ours", 27998]], "a note")],
        "stamp": {"command": "python bench/x.py", "commit": "0123abcdef", "written": "now"},
        "machine": {"gpu": "NVIDIA H200", "cpu_count": 16},
    }
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.json").write_text(json.dumps(result))
    (tmp_path / "plain.json").write_text(json.dumps({"rows": []}))  # no tables: left out
    page = benchmarks_page(tmp_path)
    assert (
        "### Heads, 16 cores\n\na note\n\n| engine | rows |\n| --- | --- |\n| ours | 27,998 |"
        in page
    )
    assert "`python bench/x.py` at commit 0123abc, now, on NVIDIA H200 (16 cores)" in page
    assert page.count("###") == 1


def test_run_jobs_takes_key_values_after_only_as_values():
    from bench.run_jobs import split_only

    assert split_only(["a", "b", "enc=/tmp/m"], ["jira=x"]) == (
        ["a", "b"],
        ["jira=x", "enc=/tmp/m"],
    )
    assert split_only(None, ["jira=x"]) == (None, ["jira=x"])


def test_throughput_repeats_report_each_pair_and_the_median_per_engine_and_batch():
    from bench.train_throughput import ratios

    def run(engine, batch, ratio=None, variant="default"):
        r = {"engine": engine, "batch_size": batch, "variant": variant}
        return r | ({"vs_reference": ratio} if ratio is not None else {})

    runs = [
        run("plain PyTorch eager", 256),
        run("ticketml train", 256, 0.80),
        run("plain PyTorch eager", 256),
        run("ticketml train", 256, 1.06),
        run("ticketml train", 256, 1.02),
        run("ticketml train", 64, 0.95),
    ]
    out = ratios(runs)
    assert out == {
        "default | ticketml train | 256": {"per_repeat": [0.80, 1.06, 1.02], "median": 1.02},
        "default | ticketml train | 64": {"per_repeat": [0.95], "median": 0.95},
    }
