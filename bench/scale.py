"""The pipeline at real scale: 40k long tickets, data → baseline → train → export → evaluate.

    python bench/scale.py                              # 40,000 long synthetic tickets, shipped budget
    python bench/scale.py --n-samples 2000 --epochs 1 train.accelerator=cpu   # a small CPU run

Each stage runs as a user would run it, in a scratch working directory with its own MLflow store:
`python -m ticketml <stage>` one after the other, or with --main as the MLproject's `main` runs
them (one process; on a GPU the baseline fits beside train). Its wall time is measured; where
`nvidia-smi` runs, the GPU's utilisation and memory are sampled every 0.5 s during each stage
(mean busy %, peak MiB).
The stack's imports run once first, outside the stages' times (--cold: not; see WARM_UP).
Prints a table and writes bench/results/scale_{gpu,cpu}.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, write_result  # noqa: E402

STAGES = ["data", "baseline", "train", "export_onnx", "evaluate"]
# What the stages import, run once before them unless --cold: on a freshly started GPU machine the
# first import of torch, Lightning and MLflow reads them from a cold disk (train's imports: 21.9 s
# there, bench/results/gpu/scale_gpu_main_e5_r32_cold_partial.txt), which says nothing about the
# pipeline and differs from run to run; a machine that has run anything before has them cached.
WARM_UP = "import ticketml.training.train, ticketml.export, ticketml.evaluate, mlflow, onnxruntime"


class GpuSampler:
    """`nvidia-smi -lms 500` for the length of a stage: mean utilisation and peak memory."""

    QUERY = ["--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]

    def __init__(self) -> None:
        self.proc = None
        if shutil.which("nvidia-smi"):
            self.proc = subprocess.Popen(
                ["nvidia-smi", *self.QUERY, "-lms", "500"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )

    def stop(self) -> dict:
        if self.proc is None:
            return {}
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        samples = []
        for line in out.splitlines():
            try:
                util, mem = (float(x) for x in line.split(",")[:2])  # first GPU's line
            except ValueError:
                continue
            samples.append((util, mem))
        if not samples:
            return {}
        return {
            "gpu_busy_pct": sum(u for u, _ in samples) / len(samples),
            "gpu_peak_mib": max(m for _, m in samples),
            "gpu_samples": len(samples),
        }


PREFIXES = (
    "export:",
    "baseline",
    "multitask",
    "train:",
    "preprocess",
    "evaluate:",
    "fp32",
    "ERROR",
)


def stage_row(stage: str, seconds: float, gpu: dict, returncode: int, lines: list[str]) -> dict:
    """One stage's row, printed as it ends (a run stopped early still says where its time went)."""
    row = {
        "stage": stage,
        "seconds": seconds,
        **gpu,
        "returncode": returncode,
        "output_tail": [x for x in lines if x.startswith(PREFIXES)][-40:],
    }
    busy = f"  GPU busy {gpu['gpu_busy_pct']:5.1f}%" if gpu else ""
    print(f"{stage:<12} {seconds:8.1f} s  rc {returncode}{busy}", flush=True)
    for line in row["output_tail"]:
        print(f"    {line}", flush=True)
    return row


def run_apart(work: Path, env: dict, overrides: list[str]) -> list[dict]:
    """Each stage in its own process, one after the other (`python -m ticketml <stage>`)."""
    stages = []
    for stage in STAGES:
        sampler = GpuSampler()
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "ticketml", stage, *overrides],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        lines = (proc.stdout + proc.stderr).splitlines()
        stages.append(stage_row(stage, seconds, sampler.stop(), proc.returncode, lines))
        if proc.returncode:
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
            break
    return stages


# `main` (the MLproject entry point, `mlflow run . -e main`) with the stages: one process,
# the baseline in a child process beside train where train has a GPU (ticketml.cli.entrypoint)
AS_MAIN = "import sys; from ticketml.cli import entrypoint; sys.exit(entrypoint(sys.argv[1].split(','), sys.argv[2:]))"


def run_as_main(work: Path, env: dict, overrides: list[str]) -> list[dict]:
    """The stages as `main` runs them: one process (each stage's imports and the MLflow store's
    opening paid once), the baseline beside train on a GPU. A stage's row runs from its
    `== ticketml <stage>` line to the next stage's; train's row waits for the baseline beside it
    (export needs it); the baseline's own row is 0 s with its time beside train. Where the
    baseline goes beside train, `main` first imports torch to see the GPU: data's row holds it."""
    command = [
        sys.executable,
        "-c",
        AS_MAIN,
        ",".join(STAGES),
        "--overrides",
        json.dumps(overrides),
    ]
    proc = subprocess.Popen(
        command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        bufsize=1,
    )  # fmt: skip
    stages, everything = [], []
    stage, lines, sampler, started = STAGES[0], [], GpuSampler(), time.perf_counter()
    beside, beside_lines = None, []  # [start, last line's time] of the baseline beside train

    def close(now: float, code: int) -> None:
        if stage == "train" and beside is not None:
            stages.append(
                {
                    "stage": "baseline",
                    "seconds": 0.0,  # its time is inside train's row, which waited for it
                    "beside_train_seconds": beside[1] - beside[0],
                    # main says so in train's lines (ticketml.cli.finish_beside) and stops
                    "returncode": int(any("stage beside training failed" in x for x in lines)),
                    "output_tail": [x for x in beside_lines if x.startswith("baseline")],
                }
            )
            print(f"{'baseline':<12} {beside[1] - beside[0]:8.1f} s  beside train", flush=True)
        stages.append(stage_row(stage, now - started, sampler.stop(), code, lines))

    for line in proc.stdout:
        now, line = time.perf_counter(), line.rstrip("\n")
        everything.append(line)
        if line.startswith("== ticketml ") and "(beside " in line:
            beside = [now, now]
        elif line.startswith("== ticketml "):
            name = line.split()[2]
            if name != stage:  # the first marker is the first stage's own
                close(now, 0)
                stage, lines, sampler, started = name, [], GpuSampler(), now
        elif line.startswith("[baseline] "):
            beside[1] = now
            beside_lines.append(line.removeprefix("[baseline] "))
        else:
            lines.append(line)
    code = proc.wait()
    close(time.perf_counter(), code)
    if code:
        print("\n".join(everything[-60:]))
    return stages


def run(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="ticketml-scale-"))
    # --epochs N: exactly N epochs (no early stop); default: the shipped training budget
    budget = (
        [f"train.max_epochs={args.epochs}", "train.early_stopping_patience=1000"]
        if args.epochs
        else []
    )
    overrides = [
        f"data={args.data}",
        f"data.synthetic.n_samples={args.n_samples}",
        *budget,
        "train.progress_bar=false",
        f"mlflow.tracking_uri=sqlite:///{work}/mlflow.db",
        *args.overrides,
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    warm_up = None
    if not args.cold:  # the stack's imports once, untimed by the stages: see --cold
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", WARM_UP], cwd=work, env=env, check=True)
        warm_up = time.perf_counter() - started
        print(f"{'(warm-up)':<12} {warm_up:8.1f} s  imports once, not in the total", flush=True)
    stages = run_as_main(work, env, overrides) if args.main else run_apart(work, env, overrides)
    report = (
        json.loads((work / "artifacts/metrics/report.json").read_text())
        if (work / "artifacts/metrics/report.json").is_file()
        else {}
    )
    data_report = json.loads((work / "artifacts/data_report.json").read_text())
    multitask = (
        json.loads((work / "artifacts/metrics/multitask.json").read_text())
        if (work / "artifacts/metrics/multitask.json").is_file()
        else {}
    )
    return {
        "data": args.data,
        "n_samples": args.n_samples,
        "epochs": args.epochs,
        "as_main": args.main,
        "warm_up_seconds": warm_up,  # the imports run once before the stages (None: --cold)
        # whether the stages' imports could use compiled bytecode (a lent image may forbid it)
        "bytecode_cache": bool(os.environ.get("PYTHONPYCACHEPREFIX"))
        or not os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "overrides": args.overrides,
        "rows": data_report["split_sizes"],
        "text_length_chars": data_report["text_length_chars"],
        "stages": stages,
        "total_seconds": sum(s["seconds"] for s in stages),
        "train_summary": multitask.get("summary", {}),
        "baseline_summary": (
            json.loads((work / "artifacts/metrics/baseline.json").read_text()).get("summary", {})
            if (work / "artifacts/metrics/baseline.json").is_file()
            else {}
        ),
        "test_macro_f1": {
            model: {t: m[t]["macro_f1"] for t in ("topic", "priority")}
            for model, m in report.get("models", {}).items()
        },
        "machine": machine_info(),
        "workdir": str(work),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic_long")
    parser.add_argument("--n-samples", type=int, default=40000)
    parser.add_argument(
        "--epochs", type=int, default=None, help="exactly N epochs (default: the shipped budget)"
    )
    parser.add_argument(
        "--main",
        action="store_true",
        help="as `main` runs them: one process, the baseline beside train on a GPU (train's row "
        "waits for both); default: each stage in its own process, one after the other",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="no warm-up: the first stage pays the stack's imports from a cold disk",
    )
    parser.add_argument("--out", default=None)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every stage")
    args = parser.parse_args()
    result = run(args)
    print(
        f"\n{result['n_samples']} tickets ({result['rows']}), {result['machine'].get('gpu') or result['machine']['processor']}"
    )
    total = result["total_seconds"]
    for s in result["stages"]:
        busy = (
            f"  GPU busy {s['gpu_busy_pct']:5.1f}%, peak {s['gpu_peak_mib']:.0f} MiB"
            if "gpu_busy_pct" in s
            else ""
        )
        if "beside_train_seconds" in s:
            busy = f"  ({s['beside_train_seconds']:.1f} s beside train, inside its row)"
        print(f"  {s['stage']:<12} {s['seconds']:8.1f} s  {s['seconds'] / total:5.1%}{busy}")
    print(f"  {'total':<12} {result['total_seconds']:8.1f} s")
    for model, f1 in result["test_macro_f1"].items():
        print(f"  {model:<12} test macro-F1 topic {f1['topic']:.3f}, priority {f1['priority']:.3f}")
    gpu = "gpu" in result["machine"]
    write_result(
        result, args.out or ROOT / "bench" / "results" / f"scale_{'gpu' if gpu else 'cpu'}.json"
    )


if __name__ == "__main__":
    main()
