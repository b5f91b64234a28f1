"""Study wall time with 1, 2 and 4 `ticketml tune` workers sharing one PostgreSQL study.

    python bench/tune_workers.py [--trials 8] [--workers 1 2 4] [overrides...]
    python bench/tune_workers.py --n-samples 4000 --max-length 256 --epochs 2 \
        --out bench/results/gpu/tune_workers_gpu.json train.accelerator=gpu   # one GPU, shared

A throwaway PostgreSQL (the stack extra), a small synthetic split, the default encoder,
`--epochs` per trial; the same total number of trials split over the workers, all started at
once (`tune.workers`), each with its share of the cores and, on a GPU, all on the one card.
Reports the study's wall time and trials per hour. Writes bench/results/tune_workers.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, write_result  # noqa: E402
from tools.loopback import free_port  # noqa: E402


def run(
    workers: int, trials: int, epochs: int, workdir: Path, storage: str, overrides: list[str]
) -> dict:
    """One `ticketml tune tune.workers=N`, as a user runs it: the product splits the trials and
    this machine's cores over the workers (ticketml.training.tune.run_workers)."""
    from ticketml.baseline import cpu_count

    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ticketml",
            "tune",
            f"tune.workers={workers}",
            f"tune.n_trials={trials}",
            f"tune.study_name=w{workers}",
            f"tune.max_epochs={epochs}",
            "tune.pruner_startup_trials=100",
            "train.progress_bar=false",
            *overrides,
        ],
        cwd=workdir,
        env={**os.environ, "TICKETML_TUNE_STORAGE": storage},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    return {
        "workers": workers,
        "trials": trials,
        "seconds": seconds,
        "trials_per_hour": trials * 3600 / seconds,
        "exit_codes": [proc.returncode],
        "threads_per_worker": max(1, cpu_count() // workers),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--n-samples", type=int, default=600)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1, help="per trial")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "tune_workers.json"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    from ticketml.stack import LocalPostgres, database_url

    work = Path(tempfile.mkdtemp(prefix="ticketml-workers-"))
    base = [
        f"data.synthetic.n_samples={args.n_samples}",
        f"model.max_length={args.max_length}",
        f"mlflow.tracking_uri=sqlite:///{work}/mlflow.db",
        *args.overrides,
    ]
    subprocess.run(
        [sys.executable, "-m", "ticketml", "data", *base], cwd=work, check=True, capture_output=True
    )
    db = LocalPostgres(work / "pg", free_port())
    password = "bench-only"
    db.init(password)
    db.start()
    try:
        storage = database_url(db.port, "optuna", password)
        results = []
        for n in args.workers:
            results.append(run(n, args.trials, args.epochs, work, storage, base))
            r = results[-1]
            print(
                f"{n} worker(s): {args.trials} trials in {r['seconds']:.1f} s "
                f"({results[0]['seconds'] / r['seconds']:.2f}x one worker, "
                f"{r['trials_per_hour']:.0f} trials/h), exit {r['exit_codes']}",
                flush=True,
            )
    finally:
        db.stop()
    write_result(
        {
            "n_samples": args.n_samples,
            "max_length": args.max_length,
            "epochs_per_trial": args.epochs,
            "overrides": args.overrides,
            "runs": results,
            "machine": machine_info(),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
