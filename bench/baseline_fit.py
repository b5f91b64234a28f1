"""The baseline's heads on every core against scikit-learn's LogisticRegression, same features.

    python bench/baseline_fit.py --data synthetic_long data.synthetic.n_samples=40000
    python bench/baseline_fit.py --data jira_agile data.path=../shared/data/jira-agile-sample/tickets.csv

Runs `ticketml data` in a scratch folder and fits the shared features once (the stage's own
fit_features, timed). Then, on that matrix, each task's head three ways: the reference, plain
scikit-learn LogisticRegression (lbfgs, the stage's former solver: one core per head, the two
heads side by side in processes as the stage ran them); ticketml.logistic on one thread per head;
and the stage's own `fit_heads` (both heads at once in processes, each summing its loss over
row shards in threads on half the cores). Prints
seconds, iterations and val/test macro-F1 for each, with the ratio to the reference, and writes
bench/results/baseline_fit_<data>.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, table, write_result  # noqa: E402


def prepare(data: str, overrides: list[str]):
    """(cfg, splits, label maps, fitted features, train matrix, features seconds, val/test
    matrices) for `data`, prepared by `ticketml data` in a scratch folder."""
    work = Path(tempfile.mkdtemp(prefix="ticketml-bfit-"))
    overrides = [f"data={data}", f"mlflow.tracking_uri=sqlite:///{work}/m.db", *overrides]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    subprocess.run(
        [sys.executable, "-m", "ticketml", "data", *overrides],
        cwd=work, env=env, check=True, capture_output=True,
    )  # fmt: skip
    os.chdir(work)
    from ticketml.baseline import csr, fit_features
    from ticketml.config import load_config
    from ticketml.contract import load_label_maps, load_splits

    cfg = load_config(overrides)
    splits, label_maps = load_splits(cfg), load_label_maps(cfg)
    started = time.perf_counter()
    features, matrix = fit_features(splits["train"]["text"].tolist(), cfg.baseline)
    features_s = time.perf_counter() - started
    held = {
        s: csr(features.transform(splits[s]["text"].tolist()), len(splits[s]), features.n_features)
        for s in ("val", "test")
    }
    return cfg, splits, label_maps, features, matrix, features_s, held


def held_macro_f1(splits: dict, held: dict, label_maps: dict, task: str, predict) -> dict:
    """{"<split>_macro_f1"} on val and test's rows labelled for `task`; `predict(matrix)` gives
    label-map indices."""
    from ticketml.data.schema import MISSING
    from ticketml.metrics import task_metrics

    out = {}
    for s, x in held.items():
        labelled = (splits[s][task] != MISSING).to_numpy()
        ids = {label: i for i, label in enumerate(label_maps[task])}
        y = splits[s][task][labelled].map(ids).to_numpy()
        out[f"{s}_macro_f1"] = task_metrics(y, predict(x[labelled]), label_maps[task])["macro_f1"]
    return out


def tables(result: dict) -> list[dict]:
    """The result's table (bench.machine.table), from its rows."""
    rows = result["rows"]
    ref = next(x["wall_s"] for x in rows if x["engine"].startswith("scikit"))
    return [
        table(
            f"The baseline's heads on every core: {result['data']}, {result['train_rows']:,} "
            f"train rows, {result['cores']} cores",
            [
                "engine",
                "threads per head",
                "task",
                "iterations",
                "both heads",
                "× reference",
                "val macro-F1",
                "test macro-F1",
            ],  # fmt: skip
            [
                [
                    x["engine"],
                    x["threads_per_head"],
                    x["task"],
                    x.get("iterations", "–"),
                    f"{x['wall_s']:.1f} s",
                    f"{ref / x['wall_s']:.1f}×",
                    f"{x['val_macro_f1']:.4f}",
                    f"{x['test_macro_f1']:.4f}",
                ]  # fmt: skip
                for x in rows
            ],
            f"{result['features']:,} features, {result['nonzeros']:,} nonzeros (fitted in "
            f"{result['features_s']:.1f} s, the same for every engine). The reference is plain "
            "scikit-learn LogisticRegression (lbfgs, one core per head, the two heads in two "
            "processes: the former stage); `fit_heads` is the stage's (the same objective and "
            "L-BFGS settings, `ticketml.logistic`, each head's loss over row shards in threads).",
        )
    ]


def sklearn_head(matrix, labels, b):
    from sklearn.linear_model import LogisticRegression

    from ticketml.logistic import LogisticFit

    started = time.perf_counter()
    clf = LogisticRegression(C=float(b.C), class_weight=b.class_weight, max_iter=int(b.max_iter))
    clf.fit(matrix, labels)
    fit = LogisticFit(clf.classes_, clf.coef_, clf.intercept_, int(clf.n_iter_[0]))
    return fit, time.perf_counter() - started


def ours_head(matrix, labels, b, threads):
    from ticketml.logistic import fit_logistic

    started = time.perf_counter()
    fit = fit_logistic(matrix, labels, float(b.C), b.class_weight, int(b.max_iter), threads=threads)
    return fit, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic_long")
    parser.add_argument(
        "--no-single", action="store_true", help="leave out ticketml.logistic on one thread"
    )
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    cfg, splits, label_maps, features, matrix, features_s, held = prepare(args.data, args.overrides)
    from joblib import Parallel, delayed

    from ticketml import TASKS
    from ticketml.baseline import class_columns, cpu_count, fit_heads, head_device, head_layout
    from ticketml.data.schema import MISSING

    b = cfg.baseline
    cores = cpu_count()
    train = splits["train"]
    keep = {t: (train[t] != MISSING).to_numpy() for t in TASKS}
    data = {t: (matrix[keep[t]], train[t].to_numpy()[keep[t]]) for t in TASKS}

    def scores(task, coef, intercept) -> dict:
        return held_macro_f1(
            splits, held, label_maps, task, lambda x: (x @ coef + intercept).argmax(axis=1)
        )

    rows = []

    def record(engine, threads, wall, fits):
        for task, (fit, seconds) in zip(TASKS, fits, strict=True):
            coef, intercept = class_columns(fit, label_maps[task], matrix.shape[1])
            row = {"engine": engine, "threads_per_head": threads, "task": task,
                   "iterations": fit.n_iter, "head_s": seconds, "wall_s": wall,
                   **scores(task, coef, intercept)}  # fmt: skip
            rows.append(row)
            print(
                f"{engine:<34} {task:<9} {threads:>2} thr {fit.n_iter:>5} it "
                f"{seconds:7.1f} s (both heads {wall:6.1f} s)  val {row['val_macro_f1']:.4f}  "
                f"test {row['test_macro_f1']:.4f}",
                flush=True,
            )

    started = time.perf_counter()
    fits = Parallel(n_jobs=min(len(TASKS), cores), backend="loky")(
        delayed(sklearn_head)(x, y, b) for x, y in data.values()
    )
    record("scikit-learn (reference)", 1, time.perf_counter() - started, fits)
    if not args.no_single:
        started = time.perf_counter()
        fits = Parallel(n_jobs=min(len(TASKS), cores), backend="loky")(
            delayed(ours_head)(x, y, b, 1) for x, y in data.values()
        )
        record("ticketml.logistic, 1 thread", 1, time.perf_counter() - started, fits)
    for device in [None] + (["cuda"] if head_device(b) else []):  # the CPU's cores, a GPU
        engine = "fit_heads (the stage)" + (f" on {device}" if device else "")
        started = time.perf_counter()
        heads = fit_heads(matrix, train, label_maps, b, device)
        wall = time.perf_counter() - started
        _, threads = head_layout(matrix.nnz, device)
        for task, (coef, intercept) in zip(TASKS, heads, strict=True):
            row = {"engine": engine, "threads_per_head": threads, "task": task,
                   "wall_s": wall, **scores(task, coef, intercept)}  # fmt: skip
            rows.append(row)
            print(f"{engine:<34} {task:<9} {threads:>2} thr  both heads {wall:6.1f} s"
                  f"  val {row['val_macro_f1']:.4f}  test {row['test_macro_f1']:.4f}", flush=True)  # fmt: skip
    ref = next(r["wall_s"] for r in rows if r["engine"].startswith("scikit"))
    print(f"features {features_s:.1f} s; heads: reference {ref:.1f} s, stage {wall:.1f} s "
          f"({ref / wall:.1f}x), {cores} cores")  # fmt: skip
    result = {
        "data": args.data,
        "overrides": args.overrides,
        "train_rows": len(train),
        "features": features.n_features,
        "nonzeros": int(matrix.nnz),
        "features_s": features_s,
        "cores": cores,
        "rows": rows,
        "machine": machine_info(),
    }
    write_result(
        {**result, "tables": tables(result)},
        ROOT / "bench" / "results" / f"baseline_fit_{args.data}.json",
    )


if __name__ == "__main__":
    main()
