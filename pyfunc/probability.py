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
    """Calibrated probabilities: softmax(logits / temperature + bias). `scaling` is one task's
    entry of calibration.json / hybrid.json: {"temperature": T, "bias": [b_1..b_k]}; the bias
    (one per class, fitted on validation) undoes the prior shift of a class-weighted loss, which
    a temperature alone cannot. No scaling, or a model from before the bias: plain softmax / T."""
    if not scaling:
        return softmax(logits)
    z = logits / float(scaling.get("temperature", 1.0))
    bias = scaling.get("bias")
    if bias is not None:
        z = z + np.asarray(bias, dtype=z.dtype)
    return softmax(z)


def decide(probs: np.ndarray, scaling: Mapping | None = None) -> np.ndarray:
    """The label index per row: argmax of the scores *before* the calibration's bias.

    The bias makes the scores mean what they say (a class-weighted loss inflates rare classes);
    the decision keeps the balanced rule the model was trained and selected for (macro-F1), so
    calibrating changes the scores, never the labels."""
    z = log_probs(probs)
    bias = (scaling or {}).get("bias")
    if bias is not None:
        z = z - np.asarray(bias, dtype=z.dtype)
    return z.argmax(axis=1)
