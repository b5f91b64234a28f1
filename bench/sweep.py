"""Measure candidate training defaults side by side on one dataset (same split, same seed).

    python bench/sweep.py --name max_length "model.max_length=128" "model.max_length=256"

Each positional argument is one candidate: space-separated Hydra overrides. Writes
bench/results/sweep_<name>.json with test macro-F1 per task and the baseline on the same split.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, scratch_overrides, write_result  # noqa: E402


def main() -> None:
    from ticketml.baseline import fit_baseline
    from ticketml.config import load_config
    from ticketml.contract import load_label_maps, load_splits
    from ticketml.data.preprocess import preprocess
    from ticketml.data.schema import encode_labels
    from ticketml.data.sources import download_data
    from ticketml.metrics import evaluate_probs
    from ticketml.training.train import evaluate, train_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument(
        "--base", default="", help="overrides shared by every candidate (data=..., etc.)"
    )
    parser.add_argument("candidates", nargs="+")
    args = parser.parse_args()
    paths = scratch_overrides("ticketml-sweep-")
    base = [*paths, "train.progress_bar=false", *shlex.split(args.base)]
    cfg = load_config(base)
    download_data(cfg)
    preprocess(cfg)
    splits, label_maps = load_splits(cfg), load_label_maps(cfg)
    model = fit_baseline(splits["train"], label_maps, cfg.baseline)
    baseline = evaluate_probs(
        model.predict_proba(splits["test"]["text"].tolist()),
        encode_labels(splits["test"], label_maps),
        label_maps,
    )
    rows = [
        {
            "candidate": "tfidf baseline",
            **{t: baseline[t]["macro_f1"] for t in ("topic", "priority")},
        }
    ]
    for cand in args.candidates:
        cfg = load_config([*base, *shlex.split(cand)])
        started = time.perf_counter()
        model, dm, history, _ = train_model(cfg)
        metrics, _ = evaluate(model, dm)
        rows.append(
            {
                "candidate": cand,
                **{t: metrics["test"][t]["macro_f1"] for t in ("topic", "priority")},
                "epochs": len(history.rows),
                "seconds": time.perf_counter() - started,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'candidate':<60} {'topic F1':>9} {'priority F1':>12}")
    for r in rows:
        print(f"{r['candidate']:<60} {r['topic']:>9.3f} {r['priority']:>12.3f}")
    write_result(
        {"base": args.base, "rows": rows, "machine": machine_info()},
        ROOT / "bench" / "results" / f"sweep_{args.name}.json",
    )


if __name__ == "__main__":
    main()
