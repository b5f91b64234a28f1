"""How the baseline's cost grows with rows and text length, against plain scikit-learn.

    python bench/baseline_scale.py                       # 1k, 5k, 20k, 40k rows × short/long
    python bench/baseline_scale.py --rows 1000 5000 --reference-max-rows 5000

For each size: ticketml's baseline (shared numpy TF-IDF + one LogisticRegression per task, saved
as baseline.npz) and the previous recipe in plain scikit-learn (a FeatureUnion of two
TfidfVectorizers + LogisticRegression, one pipeline per task, saved with skops as it was), on the
same generated rows: fit seconds, save seconds, file MB and test macro-F1 on 2,000 other rows.
The reference is skipped above --reference-max-rows (fit) and --skops-max-rows (its save, which
grows with the vocabulary element by element). Writes bench/results/baseline_scale.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, write_result  # noqa: E402
from ticketml import TASKS  # noqa: E402


def macro_f1(probs: dict, test, label_maps: dict) -> dict[str, float]:
    from sklearn.metrics import f1_score

    return {
        t: float(
            f1_score(
                test[t].map({c: i for i, c in enumerate(label_maps[t])}),
                probs[t].argmax(1),
                average="macro",
            )
        )
        for t in TASKS
    }


def ours(train, test, label_maps, cfg) -> dict:
    from ticketml.baseline import fit_baseline, save_baseline

    started = time.perf_counter()
    model = fit_baseline(train, label_maps, cfg.baseline)
    fit = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "baseline.npz"
        save = save_baseline(model, path)
        size = path.stat().st_size / 2**20
    return {
        "fit_s": fit,
        "save_s": save,
        "file_mb": size,
        "features": model.features.n_features,
        "test_macro_f1": macro_f1(model.predict_proba(test["text"].tolist()), test, label_maps),
    }


def reference(train, test, label_maps, cfg, skops: bool) -> dict:
    """The recipe before: one scikit-learn pipeline per task, each with its own vectorizers."""
    import zipfile

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    b = cfg.baseline

    def pipeline():
        return Pipeline(
            [
                (
                    "tfidf",
                    FeatureUnion(
                        [
                            (
                                "word",
                                TfidfVectorizer(
                                    ngram_range=(1, b.word_ngram_max),
                                    sublinear_tf=True,
                                    max_features=b.max_features,
                                ),
                            ),
                            (
                                "char",
                                TfidfVectorizer(
                                    analyzer="char_wb",
                                    ngram_range=(b.char_ngram_min, b.char_ngram_max),
                                    sublinear_tf=True,
                                    min_df=2,
                                    max_features=b.max_features,
                                ),
                            ),
                        ]
                    ),
                ),
                ("clf", LogisticRegression(C=b.C, class_weight="balanced", max_iter=b.max_iter)),
            ]
        )

    started = time.perf_counter()
    models = {t: pipeline().fit(train["text"], train[t]) for t in TASKS}
    fit = time.perf_counter() - started
    out = {"fit_s": fit, "save_s": None, "file_mb": None}
    if skops:
        import skops.io as sio

        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            for t, m in models.items():
                sio.dump(m, Path(tmp) / f"{t}.skops", compression=zipfile.ZIP_DEFLATED)
            out["save_s"] = time.perf_counter() - started
            out["file_mb"] = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20
    probs = {}
    for t, m in models.items():
        p = m.predict_proba(test["text"])
        probs[t] = p[:, [list(m.classes_).index(c) for c in label_maps[t]]]
    out["test_macro_f1"] = macro_f1(probs, test, label_maps)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 5000, 20000, 40000])
    parser.add_argument("--reference-max-rows", type=int, default=20000)
    parser.add_argument("--skops-max-rows", type=int, default=5000)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "baseline_scale.json"))
    args = parser.parse_args()
    from ticketml.config import load_config
    from ticketml.data.synthetic import generate

    cfg = load_config()
    results = []
    for kind, long_share in (("short", 0.0), ("long", 1.0)):
        test = generate(2000, 99, long_share=long_share)
        for rows in args.rows:
            train = generate(rows, 7, long_share=long_share)
            label_maps = {
                "topic": sorted(train["topic"].unique()),
                "priority": ["low", "medium", "high"],
            }
            row = {
                "text": kind,
                "rows": rows,
                "median_chars": float(train["text"].str.len().median()),
                "ticketml": ours(train, test, label_maps, cfg),
            }
            if rows <= args.reference_max_rows:
                row["scikit_learn"] = reference(
                    train, test, label_maps, cfg, skops=rows <= args.skops_max_rows
                )
            results.append(row)
            o, r = row["ticketml"], row.get("scikit_learn")
            print(
                f"{kind:<5} {rows:>6} rows: ticketml fit {o['fit_s']:.1f} s save {o['save_s']:.2f} s "
                f"{o['file_mb']:.1f} MB F1 {o['test_macro_f1']['topic']:.3f}/{o['test_macro_f1']['priority']:.3f}"
                + (
                    f" | scikit-learn fit {r['fit_s']:.1f} s"
                    + (f" save {r['save_s']:.1f} s {r['file_mb']:.1f} MB" if r["save_s"] else "")
                    + f" F1 {r['test_macro_f1']['topic']:.3f}/{r['test_macro_f1']['priority']:.3f}"
                    if r
                    else ""
                ),
                flush=True,
            )
            write_result({"runs": results, "machine": machine_info()}, args.out)


if __name__ == "__main__":
    main()
