"""Matplotlib figures (Agg backend, atomic PNG writes)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ticketml.io import atomic_path  # noqa: E402


def _save(fig: plt.Figure, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def confusion_matrix_plot(
    matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str, path: str | Path
) -> Path:
    cm = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(labels), 0.8 + 0.7 * len(labels)))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(
            j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black"
        )
    return _save(fig, path)


def curves_plot(
    history: dict[str, Sequence[float]], title: str, ylabel: str, path: str | Path
) -> Path:
    """Per-epoch curves, one line per series name."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in history.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def reliability_plot(
    probs_before: np.ndarray,
    probs_after: np.ndarray,
    labels: np.ndarray,
    title: str,
    path: str | Path,
    bins: int = 15,
) -> Path:
    """Accuracy vs confidence per bin, before and after calibration (temperature + bias)."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    from ticketml.calibration import reliability_bins

    for probs, name in ((probs_before, "uncalibrated"), (probs_after, "calibrated")):
        points = reliability_bins(probs, labels, bins)
        ax.plot([c for _, c, _ in points], [a for _, _, a in points], marker="o", label=name)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)
