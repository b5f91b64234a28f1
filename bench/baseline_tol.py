"""The baseline's solver tolerance: fit time and quality of the TF-IDF heads at several `tol`.

    python bench/baseline_tol.py --data synthetic_long data.synthetic.n_samples=40000
    python bench/baseline_tol.py --data jira_agile data.path=../shared/data/jira-agile-sample/tickets.csv

Runs `ticketml data` in a scratch folder, fits the shared features once (the stage's own
fit_features), then each task's head (the stage's solver: ticketml.logistic, lbfgs) at
every tolerance, on one core each, and scores val and test macro-F1. Prints a table and writes
bench/results/baseline_tol_<data>.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.baseline_fit import held_macro_f1, prepare  # noqa: E402
from bench.machine import machine_info, write_result  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic_long")
    parser.add_argument("--tols", default="1e-4,1e-3,3e-3")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    cfg, splits, label_maps, features, matrix, features_s, held = prepare(args.data, args.overrides)
    from ticketml import TASKS
    from ticketml.data.schema import MISSING
    from ticketml.logistic import fit_logistic

    b = cfg.baseline
    rows = []
    for tol in (float(t) for t in args.tols.split(",")):
        for task in TASKS:
            keep = (splits["train"][task] != MISSING).to_numpy()
            started = time.perf_counter()
            clf = fit_logistic(
                matrix[keep], splits["train"][task].to_numpy()[keep], float(b.C),
                b.class_weight, int(b.max_iter), tol=tol,
            )  # fmt: skip
            seconds = time.perf_counter() - started
            row = {"tol": tol, "task": task, "iterations": clf.n_iter, "seconds": seconds}
            ids = {label: i for i, label in enumerate(label_maps[task])}
            row |= held_macro_f1(
                splits,
                held,
                label_maps,
                task,
                lambda x, clf=clf, ids=ids: [ids[p] for p in clf.predict(x)],
            )
            rows.append(row)
            print(
                f"tol {tol:<7g} {task:<9} {row['iterations']:>5} iterations {seconds:7.1f} s  "
                f"val {row['val_macro_f1']:.4f}  test {row['test_macro_f1']:.4f}",
                flush=True,
            )
    write_result(
        {
            "data": args.data,
            "overrides": args.overrides,
            "train_rows": len(splits["train"]),
            "features": features.n_features,
            "nonzeros": int(matrix.nnz),
            "features_s": features_s,
            "rows": rows,
            "machine": machine_info(),
        },
        ROOT / "bench" / "results" / f"baseline_tol_{args.data}.json",
    )


if __name__ == "__main__":
    main()
