"""Temperature scaling per task (fitted on validation logits), ECE/NLL, and routing coverage."""

from __future__ import annotations

import numpy as np

from pyfunc.probability import softmax

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top-class confidence, equal-width bins."""
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            total += in_bin.mean() * abs(
                (pred[in_bin] == labels[in_bin]).mean() - conf[in_bin].mean()
            )
    return float(total)


def fit_temperature(
    logits: np.ndarray, labels: np.ndarray, low: float = 0.05, high: float = 20.0
) -> float:
    """argmin_T NLL(softmax(logits / T)) by golden-section search on log T (NLL is unimodal in T)."""
    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    for _ in range(80):
        if nll(softmax(logits, np.exp(c)), labels) < nll(softmax(logits, np.exp(d)), labels):
            b = d
        else:
            a = c
        c, d = b - ratio * (b - a), a + ratio * (b - a)
    return float(np.exp((a + b) / 2))


def calibrate(
    val_logits: np.ndarray, val_labels: np.ndarray, test_logits: np.ndarray, test_labels: np.ndarray
) -> dict:
    """Temperature from val; ECE and NLL on test before and after."""
    temperature = fit_temperature(val_logits, val_labels)
    before, after = softmax(test_logits), softmax(test_logits, temperature)
    return {
        "temperature": temperature,
        "ece_uncalibrated": ece(before, test_labels),
        "ece": ece(after, test_labels),
        "nll_uncalibrated": nll(before, test_labels),
        "nll": nll(after, test_labels),
    }


def routing_table(probs: np.ndarray, labels: np.ndarray, thresholds=THRESHOLDS) -> list[dict]:
    """For each threshold: share of tickets auto-routed (top probability ≥ t) and their accuracy."""
    conf, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    rows = []
    for t in thresholds:
        routed = conf >= t
        rows.append(
            {
                "threshold": t,
                "coverage": float(routed.mean()),
                "accuracy": float(correct[routed].mean()) if routed.any() else None,
            }
        )
    return rows
