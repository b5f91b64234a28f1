"""Hybrid model: per-task blend of the calibrated transformer and the TF-IDF baseline.

The baseline is exported as plain arrays (`baseline.npz`, read by pyfunc/tfidf.py) and the blend
weights (`hybrid.json`) are fitted on the validation split; serving needs neither torch nor sklearn.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline

from ticketml import TASKS
from ticketml.errors import ModelError
from ticketml.io import atomic_path

WEIGHTS = np.round(np.linspace(0, 1, 21), 2)


def export_baseline(models: dict[str, Pipeline], label_maps: dict, path: Path) -> None:
    """Write vocabularies, idf and LogisticRegression weights (reordered to label maps) to .npz."""
    arrays, meta = {}, {"tasks": {}}
    for task in TASKS:
        pipe = models[task]
        union, clf = pipe.named_steps["tfidf"], pipe.named_steps["clf"]
        vec_meta = []
        for j, (_, vec) in enumerate(union.transformer_list):
            if vec.analyzer not in ("word", "char_wb") or vec.norm != "l2" or not vec.use_idf:
                raise ModelError(
                    f"baseline vectoriser {vec.analyzer}/{vec.norm} cannot be exported"
                )
            vocab = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
            if any("\n" in term for term in vocab):
                raise ModelError("baseline vocabulary contains a newline")
            arrays[f"{task}_vocab_{j}"] = np.array("\n".join(vocab))
            arrays[f"{task}_idf_{j}"] = vec.idf_.astype(np.float64)
            vec_meta.append(
                {
                    "analyzer": vec.analyzer,
                    "ngram_range": list(vec.ngram_range),
                    "lowercase": vec.lowercase,
                    "sublinear_tf": vec.sublinear_tf,
                    "size": len(vocab),
                }
            )
        classes = list(clf.classes_)
        if (
            len(classes) == 2
        ):  # one decision column for classes[1]; flip it if the label map is reversed
            if sorted(classes) != sorted(label_maps[task]):
                raise ModelError(
                    f"{task}: baseline classes {classes} differ from label maps {label_maps[task]}"
                )
            sign = 1.0 if classes == list(label_maps[task]) else -1.0
            coef, intercept = sign * clf.coef_, sign * clf.intercept_
        else:
            order = [classes.index(label) for label in label_maps[task]]
            coef, intercept = clf.coef_[order], clf.intercept_[order]
        arrays[f"{task}_coef"], arrays[f"{task}_intercept"] = (
            coef.astype(np.float64),
            intercept.astype(np.float64),
        )
        meta["tasks"][task] = {"vectorizers": vec_meta}
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def fit_weights(
    transformer: dict[str, np.ndarray],
    baseline: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
) -> dict:
    """Per task, the transformer weight in [0, 1] with the best validation macro-F1 (ties → 0.5)."""
    out = {}
    for task in TASKS:
        n = transformer[task].shape[1]
        scores = [
            f1_score(
                labels[task],
                (w * transformer[task] + (1 - w) * baseline[task]).argmax(1),
                labels=list(range(n)),
                average="macro",
                zero_division=0,
            )
            for w in WEIGHTS
        ]
        best = max(scores)
        candidates = [w for w, s in zip(WEIGHTS, scores, strict=True) if s >= best - 1e-12]
        w = float(min(candidates, key=lambda v: abs(v - 0.5)))
        out[task] = {"transformer_weight": w, "val_macro_f1": float(best)}
    return out
