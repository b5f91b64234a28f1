"""Model quality on one dataset: TF-IDF baseline vs transformer vs hybrid, per task and language.

    python bench/quality.py --data synthetic
    python bench/quality.py --data support_tickets data.path=../shared/data/support-tickets-sample/tickets.csv
    python bench/quality.py --data synthetic --seeds 42 1 2 3 4 --name synthetic_seeds

Same split and seed for all three; on synthetic data the generator's Bayes classifier (the ceiling,
see bench/ceiling.py) is scored on that split too. With --seeds the whole comparison is repeated
per seed (a new split, and new rows on synthetic data) and summarised as mean and paired
difference to the baseline. The transformer is calibrated and the hybrid weights fitted on
val exactly as `export_onnx` does. Writes bench/results/quality_<dataset>.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.machine import machine_info, scratch_overrides, write_result  # noqa: E402

TASKS = ("topic", "priority")


def scores(
    probs: dict, labels: dict, label_maps: dict, mask=None, decisions=None, before=None
) -> dict:
    """Macro-F1/accuracy of the decisions (default: argmax) and ECE of the probabilities
    (`before`: the probabilities before the calibration map, reported as ece_uncalibrated)."""
    decisions = decisions or {t: p.argmax(1) for t, p in probs.items()}
    from sklearn.metrics import accuracy_score, f1_score

    from ticketml.calibration import ece

    def rows(a):
        return a if mask is None else a[mask]

    out = {}
    for t in TASKS:
        y, p = rows(labels[t]), rows(decisions[t])
        out[t] = {
            "macro_f1": float(
                f1_score(
                    y, p, labels=list(range(len(label_maps[t]))), average="macro", zero_division=0
                )
            ),
            "accuracy": float(accuracy_score(y, p)),
            "ece": ece(rows(probs[t]), y),
            "n": int(len(y)),
        }
        if before is not None:
            out[t]["ece_uncalibrated"] = ece(rows(before[t]), y)
    return out


def measure(data: str, overrides: list[str], probs_dir: Path | None = None) -> dict:
    """Train and score baseline, transformer and hybrid (and, on synthetic data, the ceiling)."""
    from pyfunc.core import blend, decide_tasks, scaling_of
    from pyfunc.probability import scaled, softmax
    from ticketml.baseline import fit_baseline
    from ticketml.calibration import fit_calibration
    from ticketml.config import load_config
    from ticketml.contract import load_label_maps, load_splits
    from ticketml.data.preprocess import preprocess
    from ticketml.data.schema import encode_labels
    from ticketml.data.sources import download_data, generated
    from ticketml.hybrid import fit_hybrid
    from ticketml.training.train import evaluate, train_model

    paths = scratch_overrides("ticketml-quality-")
    cfg = load_config([f"data={data}", *paths, "train.progress_bar=false", *overrides])
    download_data(cfg)
    preprocess(cfg)
    splits, label_maps = load_splits(cfg), load_label_maps(cfg)
    labels = {s: encode_labels(splits[s], label_maps) for s in ("val", "test")}
    started = time.perf_counter()
    model = fit_baseline(splits["train"], label_maps, cfg.baseline, int(cfg.seed))
    base = {s: model.predict_proba(splits[s]["text"].tolist()) for s in ("val", "test")}
    baseline_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model, dm, history, _ = train_model(cfg)
    _, logits = evaluate(model, dm)
    train_seconds = time.perf_counter() - started
    # exactly what train + export_onnx ship: the transformer's calibration map, the hybrid's
    # weights and the blend's own map, all fitted on val; labels by pyfunc's decision rule
    calib = {t: fit_calibration(logits["val"][t], labels["val"][t]) for t in TASKS}
    tempered = {
        s: {t: softmax(logits[s][t], calib[t]["temperature"]) for t in TASKS}
        for s in ("val", "test")
    }
    trans = {s: {t: scaled(logits[s][t], calib[t]) for t in TASKS} for s in ("val", "test")}
    weights = fit_hybrid(tempered["val"], base["val"], labels["val"])
    w = {t: weights[t]["transformer_weight"] for t in TASKS}
    hybrid_scalings = {t: scaling_of(weights[t]) for t in TASKS}
    hybrid = blend(w, tempered["test"], base["test"], hybrid_scalings)
    if probs_dir is not None:  # per-row probabilities, to try other blends without retraining
        probs_dir.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            probs_dir / f"{data}_seed{cfg.seed}.npz",
            **{
                f"{s}_{m}_{t}": p[s][t]
                for s in ("val", "test")
                for m, p in (("baseline", base), ("transformer", trans))
                for t in TASKS
            },
            **{f"{s}_labels_{t}": labels[s][t] for s in ("val", "test") for t in TASKS},
            test_language=splits["test"]
            .get("language", pd.Series([""] * len(splits["test"])))
            .to_numpy(str),
        )
    test = splits["test"]
    probs = {"baseline": base["test"], "transformer": trans["test"], "hybrid": hybrid}
    decisions = {
        "baseline": decide_tasks(base["test"]),
        "transformer": decide_tasks(trans["test"], calib),
        "hybrid": decide_tasks(hybrid, hybrid_scalings),
    }
    before = {
        "transformer": {t: softmax(logits["test"][t]) for t in TASKS},
        "hybrid": blend(w, tempered["test"], base["test"]),
    }
    if generated(cfg):  # ceiling_proba is None when the rows are not this generator's
        from ticketml.data.synthetic import ceiling_proba

        ceiling = ceiling_proba(cfg, test["text"].tolist(), label_maps)
        if ceiling is not None:
            probs["ceiling"] = ceiling
            decisions["ceiling"] = decide_tasks(ceiling)
    result = {
        "dataset": data,
        "seed": int(cfg.seed),
        "encoder": cfg.model.encoder_name,
        "max_length": cfg.model.max_length,
        "train_rows": len(splits["train"]),
        "test_rows": len(test),
        "epochs": len(history.rows),
        "train_seconds": train_seconds,
        "baseline_seconds": baseline_seconds,
        "hybrid_weights": weights,
        "overrides": overrides,
        "models": {
            k: scores(v, labels["test"], label_maps, None, decisions[k], before.get(k))
            for k, v in probs.items()
        },
    }
    if "language" in test.columns:
        result["by_language"] = {}
        for lang, count in test["language"].value_counts().items():
            if count >= 20:
                mask = (test["language"] == lang).to_numpy()
                result["by_language"][lang] = {
                    k: scores(v, labels["test"], label_maps, mask, decisions[k], before.get(k))
                    for k, v in probs.items()
                }
    print(f"\n{data}, seed {cfg.seed}: {len(test)} test tickets, {result['epochs']} epochs")
    print(
        f"{'model':<12} {'rows':<8} {'topic F1':>9} {'priority F1':>12} {'ECE (uncalibrated)':>26}"
    )
    for group, per_model in [("all", result["models"]), *result.get("by_language", {}).items()]:
        for name, m in per_model.items():
            ece = " ".join(
                f"{m[t]['ece']:.3f}"
                + (f" ({m[t]['ece_uncalibrated']:.3f})" if "ece_uncalibrated" in m[t] else "")
                for t in TASKS
            )
            print(
                f"{name:<12} {group:<8} {m['topic']['macro_f1']:>9.3f} {m['priority']['macro_f1']:>12.3f} {ece:>26}"
            )
    return result


def summarise(runs: list[dict]) -> dict:
    """Over seeds: each model's mean test macro-F1 per task, and its paired difference to the baseline."""
    out = {}
    for name in runs[0]["models"]:
        out[name] = {}
        for task in TASKS:
            vals = np.array([r["models"][name][task]["macro_f1"] for r in runs])
            diff = vals - np.array([r["models"]["baseline"][task]["macro_f1"] for r in runs])
            eces = [r["models"][name][task].get("ece") for r in runs]
            before = [r["models"][name][task].get("ece_uncalibrated") for r in runs]
            out[name][task] = {
                "mean_ece": float(np.mean(eces)) if None not in eces else None,
                "mean_ece_uncalibrated": float(np.mean(before)) if None not in before else None,
                "mean": float(vals.mean()),
                "min": float(vals.min()),
                "max": float(vals.max()),
                "mean_minus_baseline": float(diff.mean()),
                "wins_over_baseline": int((diff > 0).sum()),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic")
    parser.add_argument("--name", default=None, help="result name (default: the data config)")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="repeat with each seed (new split, and new rows on synthetic data); one file",
    )
    parser.add_argument("--probs-dir", type=Path, default=None, help="save per-row probabilities")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    path = ROOT / "bench" / "results" / f"quality_{args.name or args.data}.json"
    if not args.seeds:
        result = measure(args.data, args.overrides, args.probs_dir)
        result["machine"] = machine_info()
        write_result(result, path)
        return
    runs = []
    for seed in args.seeds:  # the file is rewritten after each seed: a cut-off run keeps its seeds
        runs.append(measure(args.data, [*args.overrides, f"seed={seed}"], args.probs_dir))
        summary = summarise(runs)
        write_result(
            {
                "dataset": args.data,
                "seeds": [r["seed"] for r in runs],
                "summary": summary,
                "runs": runs,
                "machine": machine_info(),
            },
            path,
        )
    print(f"\nover seeds {args.seeds}: mean test macro-F1 (mean difference to the baseline, wins)")
    for name, per_task in summary.items():
        cells = [
            f"{t} {v['mean']:.3f} ({v['mean_minus_baseline']:+.3f}, {v['wins_over_baseline']}/{len(runs)})"
            for t, v in per_task.items()
        ]
        print(f"{name:<12} " + "  ".join(cells))


if __name__ == "__main__":
    main()
