"""Training throughput: `ticketml train` against a plain PyTorch loop, same process, same batches.

    python bench/train_throughput.py --device cuda                    # 20k synthetic tickets, 3 epochs
    python bench/train_throughput.py --device cuda --batch-sizes 64 256 --compile
    python bench/train_throughput.py --device cpu --n-samples 1500 --batch-sizes 32

For each batch size: the reference is a plain PyTorch loop (the same MultiTaskClassifier, loss,
AdamW with PyTorch's default implementation, bf16 autocast on a GPU) over the very batches
ticketml trains on (same sampler, same widths), each epoch ending with a plain validation pass
(the val split forward, macro-F1 by scikit-learn: what a loop with early stopping does; without
it: --reference-train-only); then `ticketml train`'s own fit (Lightning) with validation after
every epoch, and its evaluation after the fit. Reports epoch 1 vs the steady epochs (median of
the rest), samples/s of the training loop alone and of the whole epoch, peak GPU memory, and the
ratio of ticketml's whole epoch to the reference's. Writes bench/results/train_{gpu,cpu}.json.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, scratch_overrides, write_result  # noqa: E402


def prepare(args: argparse.Namespace) -> list[str]:
    from ticketml.config import load_config
    from ticketml.data.preprocess import preprocess
    from ticketml.data.sources import download_data

    overrides = [
        *scratch_overrides("ticketml-bench-"),
        f"data={args.data}",
        f"data.synthetic.n_samples={args.n_samples}",
        "data.source=synthetic",
        f"train.max_epochs={args.epochs}",
        "train.early_stopping_patience=1000",
        f"train.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
        "train.progress_bar=false",
        *args.overrides,
    ]
    cfg = load_config(overrides)
    download_data(cfg)
    preprocess(cfg)
    return overrides


def sync(device) -> float:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def reference(overrides: list[str], batch: str, compile_: bool, validate: bool = True) -> dict:
    """The plain loop: forward, weighted loss, backward, AdamW step, scheduler-free; compiled,
    the whole encoder is (ticketml compiles its repeated layers: module.compile_encoder). With
    `validate`, each epoch ends with a plain validation pass (plain_validation), as a loop with
    early stopping's does: `loop_seconds` are the training alone, `epoch_seconds` both."""
    import lightning as L
    import torch

    from ticketml.config import load_config
    from ticketml.training.runtime import resolve_runtime
    from ticketml.training.train import build_datamodule, build_model

    cfg = load_config([*overrides, f"train.batch_size={int(batch)}", "train.compile=false"])
    L.seed_everything(int(cfg.seed), verbose=False)
    runtime = resolve_runtime(cfg)
    device = torch.device("cuda" if runtime.accelerator == "gpu" else "cpu")
    if device.type == "cuda" and not cfg.train.cudnn_attention:
        torch.backends.cuda.enable_cudnn_sdp(False)  # as ticketml train does
    dm = build_datamodule(cfg, runtime)
    model = build_model(cfg, dm, runtime).to(device).train()
    if compile_:  # as a plain PyTorch user compiles: the whole encoder, dynamic widths
        model.encoder.compile(dynamic=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=runtime.learning_rate, weight_decay=0.01)
    loader = dm.train_dataloader()
    rows = len(dm.splits["train"])
    autocast = partial(
        torch.autocast,
        device.type,
        dtype=runtime.autocast_dtype,
        enabled=runtime.autocast_dtype is not None,
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    loop_seconds, epoch_seconds = [], []
    for _ in range(int(cfg.train.max_epochs)):
        start = sync(device)
        model.train()
        for b in loader:
            b = {k: v.to(device, non_blocking=True) for k, v in b.items()}
            with autocast():
                logits = model(b["input_ids"], b["attention_mask"])
                loss, _ = model._loss(logits, b)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        loop_seconds.append(sync(device) - start)
        if validate:
            plain_validation(model, dm.val_dataloader(), device, autocast)
        epoch_seconds.append(sync(device) - start)
    return summarise(
        f"plain PyTorch {'compiled' if compile_ else 'eager'}",
        batch,
        rows,
        loop_seconds,
        epoch_seconds,
        device,
    ) | {"validates": validate}


def plain_validation(model, loader, device, autocast) -> dict[str, float]:
    """What a plain loop with early stopping does after each epoch: the val split forward, no
    gradients, each task's predictions to the host once, macro-F1 by scikit-learn."""
    import torch
    from sklearn.metrics import f1_score

    model.eval()
    preds: dict[str, list] = {}
    labels: dict[str, list] = {}
    with torch.inference_mode(), autocast():
        for b in loader:
            b = {k: v.to(device, non_blocking=True) for k, v in b.items()}
            for task, z in model(b["input_ids"], b["attention_mask"]).items():
                preds.setdefault(task, []).append(z.argmax(-1))
                labels.setdefault(task, []).append(b[task])
    scores = {}
    for task in preds:
        y_true, y_pred = torch.cat(labels[task]).cpu(), torch.cat(preds[task]).cpu()
        keep = y_true >= 0
        scores[task] = f1_score(y_true[keep], y_pred[keep], average="macro")
    return scores


def ticketml_run(overrides: list[str], batch: str, compile_: bool) -> dict:
    """`ticketml train`'s fit (Lightning), then its evaluation of val + test after the fit."""
    import torch

    from ticketml.config import load_config
    from ticketml.training.runtime import resolve_runtime
    from ticketml.training.train import evaluate, train_model

    cfg = load_config([*overrides, f"train.batch_size={batch}", f"train.compile={compile_}"])
    runtime = resolve_runtime(cfg)
    if runtime.accelerator == "gpu":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    model, dm, history, _ = train_model(cfg)
    fit_seconds = time.perf_counter() - started
    start = sync(model.device)
    metrics, _ = evaluate(model, dm, runtime)
    eval_seconds = sync(model.device) - start
    out = summarise(
        f"ticketml train{' (compile)' if compile_ else ''}",
        runtime.batch_size,
        len(dm.frames["train"]),
        history.train_seconds,
        history.epoch_seconds,
        model.device,
    )
    out.update(
        {
            "batch_setting": batch,
            "learning_rate": runtime.learning_rate,
            "validation_seconds": history.val_seconds,
            "fit_seconds": fit_seconds,
            "evaluation_after_fit": {
                "device": str(model.device),
                "seconds": eval_seconds,
                "rows": len(dm.frames["val"]) + len(dm.frames["test"]),
            },
            "test_macro_f1": {t: metrics["test"][t]["macro_f1"] for t in ("topic", "priority")},
        }
    )
    return out


def summarise(name, batch, rows, loop_seconds, epoch_seconds, device) -> dict:
    import torch

    steady_loop = statistics.median(loop_seconds[1:] or loop_seconds)
    steady_epoch = statistics.median(epoch_seconds[1:] or epoch_seconds)
    return {
        "engine": name,
        "batch_size": batch,
        "train_rows": rows,
        "loop_seconds": loop_seconds,
        "epoch_seconds": epoch_seconds,
        "loop_samples_per_s": rows / steady_loop,
        "epoch_samples_per_s": rows / steady_epoch,
        "epoch1_vs_steady": epoch_seconds[0] / steady_epoch,
        "peak_gpu_memory_gib": (
            torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
        ),
    }


def ratios(runs: list[dict]) -> dict[str, dict]:
    """ticketml's ratio to the reference per (variant, engine, batch), each repeat's and their
    median: one pair is at the mercy of the card's clocks, several in a row are not."""
    groups: dict[str, list[float]] = {}
    for r in runs:
        if "vs_reference" in r:
            groups.setdefault(f"{r['variant']} | {r['engine']} | {r['batch_size']}", []).append(
                r["vs_reference"]
            )
    return {k: {"per_repeat": v, "median": statistics.median(v)} for k, v in groups.items()}


def print_table(result: dict) -> None:
    print(
        f"\ntraining throughput — {result['machine'].get('gpu') or result['machine']['processor']}"
    )
    print(
        f"{'variant':<10} {'engine':<28} {'batch':>5} {'epoch1 s':>8} {'steady s':>8} {'e1/steady':>9} "
        f"{'loop/s':>8} {'epoch/s':>8} {'x ref':>6} {'peak GiB':>8}  test F1"
    )
    for r in result["runs"]:
        steady = statistics.median(r["epoch_seconds"][1:] or r["epoch_seconds"])
        mem = f"{r['peak_gpu_memory_gib']:.2f}" if r["peak_gpu_memory_gib"] else "-"
        f1 = r.get("test_macro_f1")
        print(
            f"{r.get('variant', ''):<10} {r['engine']:<28} {r['batch_size']:>5} {r['epoch_seconds'][0]:>8.2f} {steady:>8.2f} "
            f"{r['epoch1_vs_steady']:>9.2f} {r['loop_samples_per_s']:>8.0f} "
            f"{r['epoch_samples_per_s']:>8.0f} {r.get('vs_reference', 1.0):>6.2f} {mem:>8}  "
            + (f"{f1['topic']:.3f} / {f1['priority']:.3f}" if f1 else "")
        )
    for key, ratio in result.get("vs_reference", {}).items():
        each = ", ".join(f"{x:.2f}" for x in ratio["per_repeat"])
        print(
            f"x ref, {key}: median {ratio['median']:.2f} over {len(ratio['per_repeat'])} ({each})"
        )
    for r in result["runs"]:
        if "evaluation_after_fit" in r:
            e = r["evaluation_after_fit"]
            print(
                f"{r['engine']} b{r['batch_size']}: evaluation after fit on {e['device']}, "
                f"{e['rows']} rows in {e['seconds']:.2f} s"
            )


def in_fresh_process(
    kind: str,
    overrides: list[str],
    batch: str,
    compile_: bool,
    profile: str | None = None,
    compile_cache: str | None = None,
    train_only: bool = False,
) -> dict:
    """One measurement in its own Python process, so that epoch 1 pays the same one-time costs
    (CUDA kernels loaded on first use, allocator growth) for the reference and for ticketml.
    `compile_cache`: the folder torch.compile caches its graphs and kernels in (Inductor's and
    Triton's), so a compiled run starts cold (a new folder) or warm (one a run has filled)."""
    import json
    import os
    import subprocess

    env = dict(os.environ)
    if compile_cache:
        env["TORCHINDUCTOR_CACHE_DIR"] = str(Path(compile_cache) / "inductor")
        env["TRITON_CACHE_DIR"] = str(Path(compile_cache) / "triton")

    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        args = ["--one", kind, "--batch", batch, "--json", out.name]
        args += ["--compile"] if compile_ else []
        args += ["--profile", profile] if profile else []
        args += ["--train-only"] if train_only else []
        subprocess.run(
            [sys.executable, __file__, *args, "--", *overrides], check=True, cwd=ROOT, env=env
        )
        return json.loads(Path(out.name).read_text())


def measure(
    kind: str, size: str, cache, *, overrides, compile_, profile_dir, label, tags, train_only
) -> dict:
    """One engine's run in a fresh process (in_fresh_process), tagged with `tags`; profiled to
    <profile_dir>/<kind>_<label>.txt where a folder is given."""
    prof = profile_dir and str(Path(profile_dir) / f"{kind}_{label}.txt")
    return in_fresh_process(kind, overrides, size, compile_, prof, cache, train_only) | tags


def one(argv: list[str]) -> None:
    import json

    parser = argparse.ArgumentParser()
    parser.add_argument("--one", choices=["ticketml", "reference"])
    parser.add_argument("--batch")
    parser.add_argument("--json")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    run = (
        ticketml_run if args.one == "ticketml" else partial(reference, validate=not args.train_only)
    )
    if args.profile:  # the functions that held the CPU longest, to a text file
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        result = profiler.runcall(run, args.overrides, args.batch, args.compile)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(40)
        Path(args.profile).write_text(text.getvalue())
    else:
        result = run(args.overrides, args.batch, args.compile)
    Path(args.json).write_text(json.dumps(result))


def main() -> None:
    if "--one" in sys.argv:
        return one(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--data", default="synthetic")
    parser.add_argument(
        "--n-samples", type=int, default=None, help="default 20000 on cuda, 1500 on cpu"
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--batch-sizes",
        nargs="+",
        default=None,
        help="default: 64 and auto (256) on cuda, 32 on cpu",
    )
    parser.add_argument("--compile", action="store_true", help="also the torch.compile runs")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help='NAME="key=value ...": also measure with these overrides (repeatable)',
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="measure each pair (ticketml and the reference in fresh processes, the reference "
        "first in every other pair) N times: the ratio is reported per pair and as the median",
    )
    parser.add_argument("--no-reference", action="store_true", help="ticketml runs only")
    parser.add_argument(
        "--reference-train-only",
        action="store_true",
        help="the reference's epoch without its validation pass (the ratio before 2026-12-07: "
        "ticketml's whole epoch over the reference's training loop alone)",
    )
    parser.add_argument(
        "--profile", default=None, help="FOLDER: cProfile each run there (top 40 by own time)"
    )
    parser.add_argument("--out", default=None)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    args.n_samples = args.n_samples or (20000 if cuda else 1500)
    batches = args.batch_sizes or (["64", "auto"] if cuda else ["32"])
    overrides = prepare(args)
    variants = [("default", [])] + [
        (v.split("=", 1)[0], v.split("=", 1)[1].split()) for v in args.variant
    ]
    runs = []
    resolved: dict[str, str] = {}  # batch setting -> the batch ticketml resolved it to
    for name, extra in variants:
        for batch, compile_, repeat in itertools.product(
            batches, (False, True) if args.compile else (False,), range(args.repeats)
        ):
            label = f"{name}_b{batch}{'_compiled' if compile_ else ''}"
            label += f"_r{repeat}" if args.repeats > 1 else ""
            # compiled, each engine starts from its own empty cache (neither reuses what the
            # other compiled), then ticketml once more from the cache its first run filled
            caches = {
                k: tempfile.mkdtemp(prefix=f"compile-{k}-") if compile_ else None
                for k in ("ours", "ref")
            }
            state = "cold" if compile_ else None

            common = {
                "overrides": [*overrides, *extra],
                "compile_": compile_,
                "profile_dir": args.profile,
                "label": label,
                "tags": {"variant": name, "compile_cache": state, "repeat": repeat},
                "train_only": args.reference_train_only,
            }
            # every other pair runs the reference first, so a drift of the card's clocks over
            # the run does not always favour the same engine
            ref_first = repeat % 2 == 1 and batch in resolved and not args.no_reference
            ref = (
                measure("reference", resolved[batch], caches["ref"], **common)
                if ref_first
                else None
            )
            ours = measure("ticketml", batch, caches["ours"], **common)
            resolved[batch] = str(ours["batch_size"])
            if not args.no_reference:
                ref = ref or measure("reference", resolved[batch], caches["ref"], **common)
                ref["order"] = ours["order"] = "reference first" if ref_first else "ticketml first"
                ours["vs_reference"] = ours["epoch_samples_per_s"] / ref["epoch_samples_per_s"]
                ours["loop_vs_reference"] = ours["loop_samples_per_s"] / ref["loop_samples_per_s"]
                runs.append(ref)
            runs.append(ours)
            if compile_:
                warm = in_fresh_process(
                    "ticketml", [*overrides, *extra], batch, True, None, caches["ours"]
                )
                warm.update(variant=f"{name}, warm cache", compile_cache="warm", repeat=repeat)
                if not args.no_reference:
                    warm["vs_reference"] = warm["epoch_samples_per_s"] / ref["epoch_samples_per_s"]
                runs.append(warm)
            for c in filter(None, caches.values()):
                shutil.rmtree(c, ignore_errors=True)
    result = {
        "device": args.device,
        "data": args.data,
        "n_samples": args.n_samples,
        "epochs": args.epochs,
        "overrides": args.overrides,
        "note": "x ref: ticketml's whole epoch (validation included) over the reference's "
        + (
            "training loop alone"
            if args.reference_train_only
            else "whole epoch (its plain validation pass included)"
        ),
        "runs": runs,
        "vs_reference": ratios(runs),
        "machine": machine_info(),
    }
    print_table(result)
    out = Path(args.out or ROOT / "bench" / "results" / f"train_{'gpu' if cuda else 'cpu'}.json")
    write_result(result, out)


if __name__ == "__main__":
    main()
