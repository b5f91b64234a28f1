"""Which text transform to ship, measured: masks on vs off, on the outside sample and synthetic data.

    python bench/text_transform.py [--data support_tickets synthetic_long] [--seeds 42 1 2 3 4]

For each transform: preprocess with it, fit the TF-IDF baseline, and score the test split three
ways: the cleaned rows (what `evaluate` scored before it scored raw rows), the raw rows through
the same transform (what every serving path does now), and the raw rows through the transform
models were served with before it travelled inside them (surrogates and NUL only). Writes
bench/results/text_transform.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, scratch_overrides, write_result  # noqa: E402

VARIANTS = {
    "masks on (the old default)": [
        "preprocess.text.mask_emails=true",
        "preprocess.text.mask_urls=true",
        "preprocess.text.mask_phones=true",
    ],
    "masks off (the default)": [],
}


def measure(data: str, seed: int, overrides: list[str]) -> dict:
    from sklearn.metrics import f1_score

    from pyfunc.text import LEGACY, clean_text
    from ticketml.baseline import fit_baseline
    from ticketml.config import load_config
    from ticketml.contract import load_label_maps, load_splits
    from ticketml.data.preprocess import preprocess
    from ticketml.data.sources import download_data

    cfg = load_config(
        [f"data={data}", f"seed={seed}", *scratch_overrides("ticketml-tt-"), *overrides]
    )
    download_data(cfg)
    preprocess(cfg)
    splits, maps = load_splits(cfg), load_label_maps(cfg)
    test = splits["test"]
    model = fit_baseline(splits["train"], maps, cfg.baseline)
    options = dict(cfg.preprocess.text)

    def f1(texts: list[str]) -> dict[str, float]:
        probs = model.predict_proba(texts)
        return {
            t: float(
                f1_score(
                    test[t].map({c: i for i, c in enumerate(maps[t])}),
                    probs[t].argmax(1),
                    average="macro",
                    labels=list(range(len(maps[t]))),
                )
            )
            for t in probs
        }

    return {
        "seed": seed,
        "cleaned_rows": f1(test["text"].tolist()),
        "raw_rows_served_now": f1([clean_text(t, options) for t in test["raw_text"]]),
        "raw_rows_served_before": f1([clean_text(t, LEGACY) for t in test["raw_text"]]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["support_tickets", "synthetic_long"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3, 4])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "text_transform.json"))
    args = parser.parse_args()
    results = []
    for data in args.data:
        for variant, overrides in VARIANTS.items():
            runs = [measure(data, seed, overrides) for seed in args.seeds]
            mean = {
                way: {t: statistics.mean(r[way][t] for r in runs) for t in ("topic", "priority")}
                for way in ("cleaned_rows", "raw_rows_served_now", "raw_rows_served_before")
            }
            results.append({"data": data, "variant": variant, "mean": mean, "runs": runs})
            print(
                f"{data:<16} {variant:<28} "
                + "  ".join(f"{w}: {m['topic']:.3f}/{m['priority']:.3f}" for w, m in mean.items()),
                flush=True,
            )
            write_result(
                {"seeds": args.seeds, "results": results, "machine": machine_info()}, args.out
            )


if __name__ == "__main__":
    main()
