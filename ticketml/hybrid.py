"""Hybrid model: per-task blend of the calibrated transformer and the TF-IDF baseline.

The baseline is served from its own plain-array file (`baseline.npz`, pyfunc/tfidf.py) and the
blend weights (`hybrid.json`) are fitted on the validation split; serving needs neither torch nor
scikit-learn.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from ticketml import TASKS

WEIGHTS = np.round(np.linspace(0, 1, 21), 2)


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


def fit_hybrid(
    transformer: dict[str, np.ndarray],
    baseline: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
) -> dict:
    """hybrid.json: per task, the blend weight (best validation macro-F1, `fit_weights`) and the
    blend's own calibration map (temperature, + class bias where it wins in cross-validation, on
    its log-probabilities; `fit_calibration` on the same validation rows). `transformer` is the tempered transformer (softmax(z / T))."""
    from pyfunc.core import blend
    from pyfunc.probability import log_probs
    from ticketml.calibration import fit_calibration

    weights = fit_weights(transformer, baseline, labels)
    mixed = blend({t: weights[t]["transformer_weight"] for t in TASKS}, transformer, baseline)
    for task in TASKS:
        weights[task].update(fit_calibration(log_probs(mixed[task]), labels[task]))
    return weights
