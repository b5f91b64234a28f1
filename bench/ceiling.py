"""The best macro-F1 any model can expect on the synthetic data: the generator's Bayes classifier.

    python bench/ceiling.py                      # the default synthetic data (seed 42)
    python bench/ceiling.py --seeds 42 1 2 --name synthetic_seeds
    python bench/ceiling.py --name synthetic_20k data.synthetic.n_samples=20000

The synthetic generator knows what each ticket was written from (its topic before label noise and
the urgency sentence it put in, if any); `ticketml.data.synthetic.bayes_proba` turns that into
P(label | text) with the generator's own probabilities. Its argmax is what an ideal text classifier
predicts, so its score on the same test split as the models is the ceiling they are measured
against (an upper bound in expectation: on a few hundred tickets a model can land above it by
luck). The TF-IDF baseline is fitted on the same split (it takes seconds) to show how far below the
ceiling it lands. Writes bench/results/ceiling_<name>.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, scratch_overrides, write_result  # noqa: E402

SPLITS = ("val", "test")


def ceiling_probs(cfg, splits: dict, label_maps: dict) -> dict:
    """Per split and task, the Bayes posterior for each processed row, columns in label-map order."""
    from ticketml.data.synthetic import ceiling_proba

    texts = [splits[name]["text"].tolist() for name in SPLITS]
    probs = ceiling_proba(cfg, [t for part in texts for t in part], label_maps)  # one generation
    if probs is None:
        raise SystemExit("the splits hold rows that are not from the synthetic generator")
    parts = {
        task: np.split(p, np.cumsum([len(part) for part in texts])[:-1])
        for task, p in probs.items()
    }
    return {name: {task: parts[task][i] for task in parts} for i, name in enumerate(SPLITS)}


def prepare(overrides: list[str]) -> tuple:
    """Generate and split the synthetic data in a scratch folder: (cfg, splits, label_maps)."""
    from ticketml.config import load_config
    from ticketml.contract import load_label_maps, load_splits
    from ticketml.data.preprocess import preprocess
    from ticketml.data.sources import download_data

    paths = scratch_overrides("ticketml-ceiling-")
    cfg = load_config(["data=synthetic", "data.source=synthetic", *paths, *overrides])
    download_data(cfg)
    preprocess(cfg)
    return cfg, load_splits(cfg), load_label_maps(cfg)


def measure(overrides: list[str]) -> dict:
    """Ceiling and baseline scores on val and test (all rows and per language) for one data config."""
    from bench.quality import scores, subset
    from pyfunc.core import decide_tasks
    from ticketml.baseline import fit_baseline
    from ticketml.data.schema import encode_labels

    cfg, splits, label_maps = prepare(overrides)
    ceiling = ceiling_probs(cfg, splits, label_maps)
    model = fit_baseline(splits["train"], label_maps, cfg.baseline)
    out = {"seed": int(cfg.seed), "n_samples": int(cfg.data.synthetic.n_samples), "splits": {}}
    for name in SPLITS:
        df, labels = splits[name], encode_labels(splits[name], label_maps)
        probs = {
            "ceiling": ceiling[name],
            "baseline": model.predict_proba(df["text"].tolist()),
        }
        groups = {"all": np.ones(len(df), dtype=bool)} | {
            str(lang): (df["language"] == lang).to_numpy()
            for lang in sorted(df["language"].unique())
        }
        out["splits"][name] = {
            group: {
                k: scores(
                    subset(p, mask), subset(labels, mask), label_maps, decide_tasks(subset(p, mask))
                )
                for k, p in probs.items()
            }
            for group, mask in groups.items()
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="synthetic", help="result name")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="data seeds")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    runs = [measure([f"seed={seed}", *args.overrides]) for seed in args.seeds]
    result = {"dataset": "synthetic", "overrides": args.overrides, "runs": runs}
    result["machine"] = machine_info()
    print(
        f"\n{'seed':>4} {'split':<5} {'rows':<4} {'n':>5}  ceiling topic / priority  baseline topic / priority"
    )
    for run in runs:
        for name, entry in run["splits"].items():
            for group, m in entry.items():
                c, b = m["ceiling"], m["baseline"]
                print(
                    f"{run['seed']:>4} {name:<5} {group:<4} {c['topic']['n']:>5}"
                    f"  {c['topic']['macro_f1']:>13.3f} / {c['priority']['macro_f1']:.3f}"
                    f"  {b['topic']['macro_f1']:>14.3f} / {b['priority']['macro_f1']:.3f}"
                )
    write_result(result, ROOT / "bench" / "results" / f"ceiling_{args.name}.json")


if __name__ == "__main__":
    main()
