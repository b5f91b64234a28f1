"""Which way to combine transformer and baseline probabilities: the shipped blend vs alternatives.

    python bench/quality.py --data synthetic --seeds 42 1 2 3 4 --probs-dir probs   # on a GPU
    python bench/blend.py probs
    python bench/blend.py probs/probs_jira --second probs/probs_jira_kd --name two_transformers

Reads the per-row val/test probabilities that `bench/quality.py --probs-dir` saved (one file per
dataset and seed), fits each candidate on val only and scores it on test:
  hybrid (shipped)  per-task weight on a 0..1 grid, best val macro-F1 (ticketml.hybrid.blend_weight)
  equal weights     the plain average
  log-linear        weighted geometric mean, weight on the same grid
  stacking C=…      a logistic regression on both models' log-probabilities (class-balanced)
  class bias        the product's blend (on the tempered transformer where the run saved it, as
                    export fits it) plus an offset per class on its log-probabilities, fitted by
                    coordinate ascent to the best val macro-F1 (a decision threshold per class)
  one weight / by script  the product's blend on the tempered transformer (as export fits it),
                    with one weight, and with a weight per script where that wins CV on val
                    (ticketml.hybrid.fit_task; scripts as saved, or for runs saved before they
                    were, Cyrillic where the row's language is ru)
  two transformers  with --second DIR (another run's saved probabilities of the same splits, e.g.
                    a distilled transformer's): the baseline and both transformers, a weight each
                    on a 0..1 grid (summing to at most 1), fitted on val; and the same three
                    in the served pool (a log-linear weight each, by NLL on val: fit_pool)
Every candidate is fitted and scored on the rows labelled for the task (a partly labelled export,
e.g. Jira's issue type). Writes bench/results/blend_<dataset>[_<name>].json with the per-seed scores and the mean over
seeds (`--name`: several runs of one dataset).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, write_result  # noqa: E402
from ticketml import TASKS  # noqa: E402
from ticketml.hybrid import macro_f1  # noqa: E402 - the product's own, as its blend is scored

GRID = np.round(np.linspace(0, 1, 21), 2)
# the class-bias candidate's grid per class, in log-probability
OFFSETS = np.linspace(-1.5, 1.5, 31)


def class_bias(logp: np.ndarray, labels: np.ndarray, passes: int = 3) -> np.ndarray:
    """An offset per class added to `logp` that raises macro-F1 on these rows: coordinate ascent
    over OFFSETS, class by class, until a pass changes nothing (at most `passes`)."""
    bias = np.zeros(logp.shape[1])
    best = macro_f1(labels, logp)
    for _ in range(passes):
        improved = False
        for c in range(len(bias)):
            keep = bias[c]
            for offset in OFFSETS:
                bias[c] = offset
                score = macro_f1(labels, logp + bias)
                if score > best + 1e-9:
                    best, keep, improved = score, offset, True
            bias[c] = keep
        if not improved:
            break
    return bias


def log_linear(w: float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    z = w * np.log(a + 1e-12) + (1 - w) * np.log(b + 1e-12)
    return z - z.max(axis=1, keepdims=True)  # argmax is all that is scored


def task_rows(d: dict, split: str, task: str, source: str = "transformer") -> tuple:
    """(labels, transformer, baseline) of one saved split, cut to the rows labelled for `task`;
    `source`: the saved transformer probabilities to read ("transformer": calibrated, or
    "tempered")."""
    from ticketml.data.schema import labelled_rows

    return labelled_rows(
        d[f"{split}_labels_{task}"], d[f"{split}_{source}_{task}"], d[f"{split}_baseline_{task}"]
    )


def shipped_weights(d: dict) -> dict[str, float]:
    """Per task, the transformer weight the product's blend fits on val (ticketml.hybrid), on
    the rows labelled for the task."""
    from ticketml.hybrid import blend_weight

    weights = {}
    for t in TASKS:
        labels, trans, base = task_rows(d, "val", t)
        weights[t] = blend_weight(trans, base, labels)["transformer_weight"]
    return weights


def row_scripts(d: dict, split: str) -> np.ndarray:
    if f"{split}_script" in d:
        return d[f"{split}_script"].astype(str)
    return np.where(d[f"{split}_language"].astype(str) == "ru", "cyrillic", "latin")


def product_blends(d: dict, task: str) -> dict[str, float]:
    """Test macro-F1 of the product's blend (ticketml.hybrid.fit_task) on the tempered
    probabilities, as export fits it (no calibration map: argmax is what is scored), fitted with
    one weight and with the rows' scripts; where the test split has Cyrillic rows, the same two
    and the baseline on those rows alone."""
    from pyfunc.core import combine
    from ticketml.data.schema import labelled_rows
    from ticketml.hybrid import fit_task

    labels, t, b, scripts = labelled_rows(
        d[f"test_labels_{task}"], d[f"test_tempered_{task}"], d[f"test_baseline_{task}"],
        row_scripts(d, "test"),
    )  # fmt: skip
    probs = {"baseline": b}
    for name, fitted_on in (("one weight", None), ("by script", row_scripts(d, "val"))):
        entry = fit_task(
            d[f"val_tempered_{task}"], d[f"val_baseline_{task}"], d[f"val_labels_{task}"],
            "blend", 0, fitted_on,
        )  # fmt: skip
        probs[name] = combine(entry, t, b, scripts if fitted_on is not None else None)
    out = {
        "one weight (tempered)": macro_f1(labels, probs["one weight"]),
        "by script": macro_f1(labels, probs["by script"]),
    }
    cyrillic = scripts == "cyrillic"
    if cyrillic.any():  # the rows a per-script weight is for
        for name in ("baseline", "one weight", "by script"):
            out[f"{name}, Cyrillic rows"] = macro_f1(labels[cyrillic], probs[name][cyrillic])
    return out


def biased_blend(d: dict, task: str) -> float:
    """Test macro-F1 of the product's one-weight blend plus a class bias fitted on val
    (`class_bias`); on the tempered transformer where the run saved it, as export fits it."""
    from ticketml.hybrid import blend_weight

    source = "tempered" if f"val_tempered_{task}" in d else "transformer"
    y_val, val_t, val_b = task_rows(d, "val", task, source)
    y_test, test_t, test_b = task_rows(d, "test", task, source)
    w = blend_weight(val_t, val_b, y_val)["transformer_weight"]
    bias = class_bias(np.log(w * val_t + (1 - w) * val_b + 1e-12), y_val)
    return macro_f1(y_test, np.log(w * test_t + (1 - w) * test_b + 1e-12) + bias)


def two_transformers(d: dict, other: dict, task: str) -> float:
    """Test macro-F1 of the baseline and two transformers (`d`'s and `other`'s, tempered where
    saved), a weight each on the GRID's tenths, fitted on val (ties: the first found)."""
    from ticketml.data.schema import labelled_rows

    source = "tempered" if f"val_tempered_{task}" in d else "transformer"

    def rows(split: str) -> tuple:
        labels = d[f"{split}_labels_{task}"]
        if not np.array_equal(labels, other[f"{split}_labels_{task}"]):
            raise SystemExit(f"--second: {split} rows differ from the first run's")
        return labelled_rows(
            labels,
            d[f"{split}_baseline_{task}"],
            d[f"{split}_{source}_{task}"],
            other[f"{split}_{source}_{task}"],
        )

    (y_val, *val), (y_test, *test) = rows("val"), rows("test")
    tenths = GRID[::2]
    pairs = [(a, b) for a in tenths for b in tenths if a + b <= 1 + 1e-9]

    def mix(p: list, a: float, b: float) -> np.ndarray:
        return (1 - a - b) * p[0] + a * p[1] + b * p[2]

    best = max(pairs, key=lambda ab: macro_f1(y_val, mix(val, *ab)))
    return macro_f1(y_test, mix(test, *best))


def two_transformers_pool(d: dict, other: dict, task: str) -> float:
    """Test macro-F1 of the served pool (ticketml.hybrid.fit_pool: a log-linear pool, weights by
    NLL on val) over the baseline and two transformers (`d`'s and `other`'s, tempered where
    saved): the pool's third expert slot, which serving gives the training tickets' votes,
    holds the second transformer."""
    from pyfunc.core import combine
    from ticketml.data.schema import labelled_rows
    from ticketml.hybrid import fit_pool

    source = "tempered" if f"val_tempered_{task}" in d else "transformer"
    (y_val, *val), (y_test, *test) = (
        labelled_rows(
            d[f"{s}_labels_{task}"],
            d[f"{s}_{source}_{task}"],
            d[f"{s}_baseline_{task}"],
            other[f"{s}_{source}_{task}"],
        )
        for s in ("val", "test")
    )
    entry = fit_pool(*val[:2], y_val, val[2])
    return macro_f1(y_test, combine(entry, *test[:2], neighbours=test[2]))


def candidates(d: dict, task: str, w: float, other: dict | None = None) -> dict[str, float]:
    """Test macro-F1 of each combination, every one fitted on the validation split only;
    `w`: the shipped blend's transformer weight for `task` (shipped_weights); `other`: a second
    run's saved probabilities of the same split (two_transformers)."""
    from sklearn.linear_model import LogisticRegression

    y_val, val_t, val_b = task_rows(d, "val", task)
    y_test, test_t, test_b = task_rows(d, "test", task)
    out = {"baseline": macro_f1(y_test, test_b), "transformer": macro_f1(y_test, test_t)}
    out["hybrid (shipped)"] = macro_f1(y_test, w * test_t + (1 - w) * test_b)
    out["class bias"] = biased_blend(d, task)
    out["equal weights"] = macro_f1(y_test, (test_t + test_b) / 2)
    scores = [macro_f1(y_val, log_linear(g, val_t, val_b)) for g in GRID]
    out["log-linear"] = macro_f1(y_test, log_linear(GRID[int(np.argmax(scores))], test_t, test_b))
    features = [
        np.hstack([np.log(t + 1e-9), np.log(b + 1e-9)])
        for t, b in ((val_t, val_b), (test_t, test_b))
    ]
    for c in (0.1, 1.0):
        lr = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
        # a class missing from val has no column: every class gets one, in label order
        lr.fit(features[0], y_val)
        stacked = np.zeros_like(test_t)
        stacked[:, lr.classes_] = lr.predict_proba(features[1])
        out[f"stacking C={c}"] = macro_f1(y_test, stacked)
    if f"val_tempered_{task}" in d and ("val_script" in d or "val_language" in d):
        out |= product_blends(d, task)
    if other is not None:
        out["two transformers"] = two_transformers(d, other, task)
        out["two transformers, pool"] = two_transformers_pool(d, other, task)
    return out


def seed_scores(path: Path, second: Path | None = None) -> dict[str, dict[str, float]]:
    """Per task, every candidate's test macro-F1 on one saved split (`second`: the same split
    saved by another run)."""
    d = dict(np.load(path))
    other = dict(np.load(second)) if second is not None else None
    weights = shipped_weights(d)
    return {t: candidates(d, t, weights[t], other) for t in TASKS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("probs_dir", type=Path)
    parser.add_argument("--name", default="", help="suffix of the result file")
    parser.add_argument(
        "--second", type=Path, help="another run's saved probabilities of the same splits"
    )
    args = parser.parse_args()
    files = defaultdict(dict)
    for f in sorted(args.probs_dir.glob("*_seed*.npz")):
        m = re.fullmatch(r"(.+)_seed(\d+)\.npz", f.name)
        files[m.group(1)][int(m.group(2))] = f
    if not files:
        raise SystemExit(f"{args.probs_dir}: no <dataset>_seed<N>.npz files")
    for dataset, seeds in files.items():
        per_seed = {
            seed: seed_scores(f, args.second / f.name if args.second else None)
            for seed, f in seeds.items()
        }
        summary = {}
        print(
            f"\n{dataset}: test macro-F1, mean over seeds {sorted(per_seed)} (difference to the baseline, wins)"
        )
        for task in TASKS:
            for name in per_seed[next(iter(per_seed))][task]:
                vals = np.array([s[task][name] for s in per_seed.values()])
                diff = vals - np.array([s[task]["baseline"] for s in per_seed.values()])
                summary.setdefault(name, {})[task] = {
                    "mean": float(vals.mean()),
                    "mean_minus_baseline": float(diff.mean()),
                    "wins_over_baseline": int((diff > 0).sum()),
                }
                print(
                    f"  {task:<9} {name:<17} {vals.mean():.3f} ({diff.mean():+.3f}, {int((diff > 0).sum())}/{len(vals)})"
                )
        write_result(
            {
                "dataset": dataset,
                "seeds": sorted(per_seed),
                "summary": summary,
                "per_seed": {str(k): v for k, v in per_seed.items()},
                "machine": machine_info(),
            },
            ROOT
            / "bench"
            / "results"
            / f"blend_{dataset}{'_' + args.name if args.name else ''}.json",
        )


if __name__ == "__main__":
    main()
