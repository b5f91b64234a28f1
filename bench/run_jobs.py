"""Run benchmark jobs side by side on one machine (a lent GPU box: MiniLM leaves most of an H200
idle, so several trainings share it), each with its share of the CPU cores and a deadline.

    python bench/run_jobs.py bench/jobs/quality_gpu.txt --out /tmp/res --deadline 540 [KEY=VALUE ...]

A jobs file holds one job a line: `<name> <bench script> <its arguments>`; `{out}` in the
arguments is the output folder, and trailing KEY=VALUE pairs of this command replace `{KEY}`
(e.g. `enc=/tmp/minilm`). Each job's output goes to <out>/logs/<name>.log; a job still running at
the deadline is stopped (what it wrote so far stays: bench/quality.py rewrites its result after
each seed). Prints a table of the jobs (exit code, seconds) and writes <out>/jobs.json.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, write_result  # noqa: E402


def parse_jobs(path: Path, values: dict[str, str]) -> list[tuple[str, list[str]]]:
    jobs = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, *args = shlex.split(line.format(**values))
        jobs.append((name, args))
    return jobs


def split_only(only: list[str] | None, values: list[str]) -> tuple[list[str] | None, list[str]]:
    """(job names, KEY=VALUE pairs): pairs written after `--only a b` land in its list (a job
    name has no "="), so they are moved back to the pairs."""
    if only is None:
        return None, values
    return [o for o in only if "=" not in o], [*values, *(o for o in only if "=" in o)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jobs", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--deadline", type=float, default=540, help="seconds from the start")
    parser.add_argument("--only", nargs="*", default=None, help="job names to run (default all)")
    parser.add_argument("values", nargs="*", help="KEY=VALUE substitutions for the jobs file")
    args = parser.parse_intermixed_args()
    only, pairs = split_only(args.only, args.values)
    values = dict(v.split("=", 1) for v in pairs) | {"out": str(args.out)}
    jobs = [j for j in parse_jobs(args.jobs, values) if only is None or j[0] in only]
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    share = max(1, (os.cpu_count() or 1) // max(1, len(jobs)))
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        # each job's share of the cores: torch's threads, BLAS and the baseline's joblib workers
        "OMP_NUM_THREADS": str(share),
        "MKL_NUM_THREADS": str(share),
        "LOKY_MAX_CPU_COUNT": str(max(2, share)),
        "TOKENIZERS_PARALLELISM": "false",
    }
    started = time.monotonic()
    running = {}
    for name, cmd in jobs:
        log = open(logs / f"{name}.log", "w")  # noqa: SIM115 - closed when the job ends
        proc = subprocess.Popen(
            [sys.executable, *cmd], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        running[name] = (proc, log, time.monotonic())
        print(f"started {name}: {' '.join(cmd)}", flush=True)
    done = {}
    while running:
        for name, (proc, log, t0) in list(running.items()):
            if proc.poll() is None and time.monotonic() - started < args.deadline:
                continue
            stopped = proc.poll() is None  # past the deadline (a job may exit 0 on SIGTERM)
            if stopped:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()
            done[name] = {
                "returncode": proc.returncode,
                "seconds": time.monotonic() - t0,
                "stopped_at_deadline": stopped,
            }
            note = "  stopped at the deadline" if stopped else ""
            print(
                f"{name:<28} rc {proc.returncode:>4}  {done[name]['seconds']:7.1f} s{note}",
                flush=True,
            )
            del running[name]
        time.sleep(1)
    write_result(
        {"jobs": done, "commands": dict(jobs), "cpu_share": share, "machine": machine_info()},
        args.out / "jobs.json",
    )


if __name__ == "__main__":
    main()
