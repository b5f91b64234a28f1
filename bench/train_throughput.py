"""Training throughput of the multi-task model: epoch time, samples/s, peak GPU memory.

    python bench/train_throughput.py --device cuda            # ~20k synthetic tickets, 3 epochs, bf16
    python bench/train_throughput.py --device cpu             # a smaller set on the CPU

Prints a table and writes bench/results/train_{gpu,cpu}.json (with the machine description).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, scratch_overrides, write_result  # noqa: E402


def run(args: argparse.Namespace) -> dict:
    import torch

    from ticketml.config import load_config
    from ticketml.data.preprocess import preprocess
    from ticketml.data.sources import download_data
    from ticketml.training.train import evaluate, train_model

    gpu = args.device == "cuda"
    overrides = [
        *scratch_overrides("ticketml-bench-"),
        f"data.synthetic.n_samples={args.n_samples}",
        "data.source=synthetic",
        f"train.max_epochs={args.epochs}",
        f"train.batch_size={args.batch_size}",
        "train.early_stopping_patience=1000",
        f"train.accelerator={'gpu' if gpu else 'cpu'}",
        "train.progress_bar=false",
        f"model.encoder_name={args.encoder}",
        *args.overrides,
    ]
    if args.precision:
        overrides.append(f"train.precision={args.precision}")
    cfg = load_config(overrides)
    download_data(cfg)
    preprocess(cfg)
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    model, dm, history, _ = train_model(cfg)
    fit_seconds = time.perf_counter() - started
    metrics, _ = evaluate(model, dm)
    rows = len(dm.frames["train"])
    from ticketml.training.train import resolve_precision

    result = {
        "device": args.device,
        "precision": resolve_precision(cfg.train)[1],
        "encoder": args.encoder,
        "train_rows": rows,
        "batch_size": args.batch_size,
        "epochs": len(history.epoch_seconds),
        "epoch_seconds": history.epoch_seconds,
        "median_epoch_seconds": statistics.median(history.epoch_seconds),
        "samples_per_second": [rows / s for s in history.epoch_seconds],
        "median_samples_per_second": rows / statistics.median(history.epoch_seconds),
        "fit_seconds": fit_seconds,
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if gpu else None,
        "test_macro_f1": {t: metrics["test"][t]["macro_f1"] for t in ("topic", "priority")},
        "machine": machine_info(),
    }
    return result


def print_table(r: dict) -> None:
    print(
        f"\ntraining throughput — {r['machine'].get('gpu') or r['machine']['processor']} ({r['precision']})"
    )
    print(f"{'epoch':>5} {'seconds':>9} {'samples/s':>10}")
    for i, (s, sps) in enumerate(zip(r["epoch_seconds"], r["samples_per_second"], strict=True), 1):
        print(f"{i:>5} {s:>9.1f} {sps:>10.1f}")
    mem = f"{r['peak_gpu_memory_gib']:.2f} GiB" if r["peak_gpu_memory_gib"] is not None else "n/a"
    print(
        f"median: {r['median_epoch_seconds']:.1f} s/epoch, {r['median_samples_per_second']:.1f} samples/s; "
        f"peak GPU memory {mem}; {r['train_rows']} train rows, batch {r['batch_size']}"
    )
    print(f"test macro-F1: {r['test_macro_f1']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument(
        "--n-samples", type=int, default=None, help="default 20000 on cuda, 1500 on cpu"
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--precision", default=None, help="default bf16-mixed on cuda, 32-true on cpu"
    )
    parser.add_argument("--encoder", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--out", default=None)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = parser.parse_args()
    args.n_samples = args.n_samples or (20000 if args.device == "cuda" else 1500)
    result = run(args)
    print_table(result)
    out = Path(
        args.out
        or ROOT / "bench" / "results" / f"train_{'gpu' if args.device == 'cuda' else 'cpu'}.json"
    )
    write_result(result, out)


if __name__ == "__main__":
    main()
