"""Ways to combine the transformer and the TF-IDF baseline, scored offline on saved runs.

    python bench/combiners_offline.py                 # probs/probs_{jira,support,long}
    python bench/combiners_offline.py --dirs probs/probs_jira --out /tmp/c.json

Reads the per-row probabilities that `bench/quality.py --probs-dir` keeps (val and test, each
model, each split: the shipped defaults' GPU runs of round 27) and fits each combination on val,
scores it on test (macro-F1 of the argmax): the shipped `blend` and `product` and the shipped
`stack`'s model (a class-balanced logistic regression on both models' log-probabilities:
ticketml.hybrid.fit_stacker, here at C=0.1, where the product picks C by 5-fold cross-validation),
beside the same stacker without the class balance (not shipped), and the log-linear pool
softmax(a x log transformer + b x log baseline), a and b fitted by NLL on val
(`model.combiner=pool`: ticketml.hybrid.fit_pool). Why: the stacker loses to the blend and even
to the baseline on Jira and the outside sample; the question is whether stacking itself or its
class balance is what loses (both base models are trained class-balanced already). Prints a
table of the mean test macro-F1 minus the baseline's per dataset and task (wins over the splits
in brackets) and writes bench/results/combiners_offline.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, table, write_result  # noqa: E402

DIRS = {"Jira": "probs/probs_jira", "outside sample": "probs/probs_support",
        "synthetic_long": "probs/probs_long"}  # fmt: skip
TASKS = ("topic", "priority")
STACK_C = 0.1  # one of ticketml.hybrid.STACK_C for both stackers (the shipped one picks by CV)


def combinations(tv, bv, yv, tt, bt) -> dict[str, np.ndarray]:
    """Each combination fitted on val (tv, bv, yv), as its test scores."""
    from pyfunc.core import combine
    from ticketml.hybrid import blend_weight, fit_pool, fit_stacker

    out = {"baseline": bt, "transformer": tt}
    for name in ("blend", "product"):
        out[name] = combine(blend_weight(tv, bv, yv, name), tt, bt)
    out["stack, class-balanced (shipped)"] = combine(fit_stacker(tv, bv, yv, STACK_C), tt, bt)
    out["stack, no class balance"] = combine(fit_stacker(tv, bv, yv, STACK_C, None), tt, bt)
    out["pool (model.combiner=pool)"] = combine(fit_pool(tv, bv, yv), tt, bt)
    return out


def score_dir(folder: Path) -> dict[str, dict[str, list[float]]]:
    """{task: {combination: [test macro-F1 per split]}} for the saved runs in `folder`."""
    from ticketml.metrics import fast_macro_f1

    scores: dict[str, dict[str, list[float]]] = {t: {} for t in TASKS}
    files = sorted(folder.glob("*_seed*.npz"))
    if not files:
        raise SystemExit(f"{folder}: no *_seed*.npz (bench/quality.py --probs-dir keeps them)")
    for path in files:
        z = np.load(path)
        for task in TASKS:
            yv, yt = z[f"val_labels_{task}"], z[f"test_labels_{task}"]
            mv, mt = yv >= 0, yt >= 0  # partial labels: each task on its labelled rows
            parts = [z[f"{s}_{m}_{task}"][m_] for s, m_ in (("val", mv), ("test", mt))
                     for m in ("tempered", "baseline")]  # fmt: skip
            tv, bv, tt, bt = parts
            k = tv.shape[1]
            for name, s in combinations(tv, bv, yv[mv], tt, bt).items():
                f1 = fast_macro_f1(yt[mt], s.argmax(1), k)
                scores[task].setdefault(name, []).append(f1)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dirs", nargs="+", help="probs folders (default: the three datasets)")
    parser.add_argument("--out", default=str(ROOT / "bench/results/combiners_offline.json"))
    args = parser.parse_args()
    dirs = {Path(d).name: d for d in args.dirs} if args.dirs else DIRS
    results, rows = {}, []
    for dataset, folder in dirs.items():
        scores = score_dir(ROOT / folder)
        results[dataset] = scores
        for task in TASKS:
            base = np.array(scores[task]["baseline"])
            for name, f1 in scores[task].items():
                if name == "baseline":
                    continue
                gain = np.array(f1) - base
                rows.append([dataset, task, name, len(f1), f"{np.mean(f1):.3f}",
                             f"{gain.mean():+.3f} ({int((gain > 0).sum())}/{len(gain)})"])  # fmt: skip
    columns = ["dataset", "task", "combination", "splits", "test macro-F1", "− baseline (wins)"]
    width = [16, 9, 28, 6, 13, 18]
    print("  ".join(c.ljust(w) for c, w in zip(columns, width, strict=True)))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, width, strict=True)))
    note = (
        "Fitted on each split's val rows, scored on its test rows, from the saved probabilities "
        "of the shipped defaults' GPU runs (round 27). Both stackers at C=0.1 (the shipped one "
        "picks C by 5-fold cross-validation: its own column in the quality tables); the "
        "stacker without class balance is not shipped, the pool is `model.combiner=pool` "
        "(not the default)."
    )
    write_result(
        {
            "dirs": dirs,
            "scores": results,
            "tables": [table("Combining the two models, offline", columns, rows, note)],
            "machine": machine_info(),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
