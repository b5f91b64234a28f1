"""Softmax and the calibration map, the one implementation (served model, TF-IDF heads,
calibration fitting)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of `logits / temperature` (a -inf logit gets probability 0)."""
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def log_probs(probs: np.ndarray) -> np.ndarray:
    """Probabilities as logits (what a calibration map of blended probabilities works on)."""
    return np.log(np.clip(probs, 1e-12, None))


def scaled(logits: np.ndarray, scaling: Mapping | None) -> np.ndarray:
    """Calibrated probabilities: (1 - floor) x softmax(logits / temperature + bias) + floor / k.
    `scaling` is one task's entry of calibration.json / hybrid.json: {"temperature": T,
    "bias": [b_1..b_k], "floor": f}; the bias (one per class, fitted on validation) undoes the
    prior shift of a class-weighted loss, which a temperature alone cannot; the floor is the share
    of labels no text explains (label noise: a ticket filed under the wrong queue), which caps
    the confidence at 1 - f + f / k where a temperature would have to soften every row. No
    scaling, or a model from before the bias or the floor: plain softmax / T."""
    if not scaling:
        return softmax(logits)
    z = logits / float(scaling.get("temperature", 1.0))
    bias = scaling.get("bias")
    if bias is not None:
        z = z + np.asarray(bias, dtype=z.dtype)
    probs = softmax(z)
    floor = float(scaling.get("floor", 0.0))
    return (1 - floor) * probs + floor / probs.shape[1] if floor else probs


def decide(probs: np.ndarray, scaling: Mapping | None = None) -> np.ndarray:
    """The label index per row: argmax of the scores *before* the calibration's bias.

    The bias makes the scores mean what they say (a class-weighted loss inflates rare classes);
    the decision keeps the balanced rule the model was trained and selected for (macro-F1), so
    calibrating changes the scores, never the labels."""
    floor = float((scaling or {}).get("floor", 0.0))
    if floor:  # the softmax under the floor (which moves every class alike, not the order)
        probs = (probs - floor / probs.shape[1]) / (1 - floor)
    z = log_probs(probs)
    bias = (scaling or {}).get("bias")
    if bias is not None:
        z = z - np.asarray(bias, dtype=z.dtype)
    return z.argmax(axis=1)
