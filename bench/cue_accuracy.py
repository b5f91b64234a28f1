"""Where priority is lost on the synthetic data: accuracy by urgency cue and language.

    python bench/quality.py --data synthetic --seeds 42 1 2 3 4 --probs-dir probs/minilm
    python bench/cue_accuracy.py minilm=probs/minilm e5-small=probs/e5

Regenerates each seed's split (cheap), looks up which urgency sentence the generator wrote into
each test ticket (`latents=True`) and scores priority accuracy per group: `cue = label` (the
sentence states the label: the ceiling gets all of these), `no cue` (only the topic hints at the
priority), `cue ≠ label` (a cue one level off, or label noise: nobody should get these). Writes
bench/results/cue_accuracy_synthetic.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, write_result  # noqa: E402


def test_rows(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The test split of `seed` with its cue group, and the ceiling's priority predictions."""
    from bench.ceiling import prepare
    from ticketml.data.synthetic import ceiling_proba, written_from

    cfg, splits, label_maps = prepare([f"seed={seed}"])
    test = splits["test"].reset_index(drop=True)
    cue = written_from(cfg).loc[test["text"], "cue"].to_numpy()
    test["group"] = np.where(
        cue == "", "no cue", np.where(cue == test["priority"], "cue = label", "cue ≠ label")
    )
    ceiling = ceiling_proba(cfg, test["text"].tolist(), label_maps)["priority"].argmax(1)
    return test, ceiling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "models", nargs="+", help="NAME=PROBS_DIR (from bench/quality.py --probs-dir)"
    )
    args = parser.parse_args()
    dirs = dict(m.split("=", 1) for m in args.models)
    seeds = sorted(
        {
            int(p.stem.rsplit("seed", 1)[1])
            for d in dirs.values()
            for p in Path(d).glob("synthetic_seed*.npz")
        }
    )
    frames = []
    for seed in seeds:
        test, ceiling = test_rows(seed)
        correct = {"ceiling": ceiling}
        for name, folder in dirs.items():
            d = np.load(Path(folder) / f"synthetic_seed{seed}.npz")
            if len(d["test_labels_priority"]) != len(test):
                raise SystemExit(f"{folder}: seed {seed} has another test split")
            correct.setdefault("baseline", d["test_baseline_priority"].argmax(1))
            correct[name] = d["test_transformer_priority"].argmax(1)
        labels = d["test_labels_priority"]
        frames.append(
            test[["group", "language"]].assign(
                seed=seed, **{k: v == labels for k, v in correct.items()}
            )
        )
    rows = pd.concat(frames, ignore_index=True)
    models = ["baseline", *dirs, "ceiling"]
    table = rows.groupby(["group", "language"])[models].mean()
    table["n"] = rows.groupby(["group", "language"]).size()
    print(f"\npriority accuracy on the test splits of seeds {seeds}, by cue group and language")
    print(table.round(3).to_string())
    write_result(
        {
            "seeds": seeds,
            "models": models,
            "groups": [
                {"group": g, "language": lang, "n": int(r["n"]), **{m: float(r[m]) for m in models}}
                for (g, lang), r in table.iterrows()
            ],
            "machine": machine_info(),
        },
        ROOT / "bench" / "results" / "cue_accuracy_synthetic.json",
    )


if __name__ == "__main__":
    main()
