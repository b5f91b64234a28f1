"""Matplotlib figures (Agg backend, atomic PNG writes)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ticketml import TASKS  # noqa: E402
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


def confusion_plots(
    metrics: dict, label_maps: dict, folder: str | Path, model: str = ""
) -> list[Path]:
    """Each task's confusion matrix on the test split of `metrics` (a stage's metrics file):
    <folder>/[<model>_]confusion_matrix_<task>.png, titled "[<model> ]<task> (test)"."""
    prefix = f"{model}_" if model else ""
    return [
        confusion_matrix_plot(
            metrics["test"][task]["confusion_matrix"],
            label_maps[task],
            f"{model} {task} (test)".strip(),
            Path(folder) / f"{prefix}confusion_matrix_{task}.png",
        )
        for task in TASKS
    ]


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


def drift_plot(reference: dict, live: dict, timeline, path: str | Path) -> Path:
    """`ticketml monitor`'s figure: reference against live for text length, language, unknown
    words, predicted topic and priority, topic confidence, and predictions per hour/day."""
    fig, axes = plt.subplots(2, 4, figsize=(17, 7.5))
    ax = axes[0, 0]
    bins = np.linspace(0, np.log10(max(max(reference["text_chars"], default=10), 10)) + 0.5, 30)
    for data, name in ((reference, "reference"), (live, "live")):
        values = np.log10(np.maximum(np.asarray(data["text_chars"], dtype=float), 1))
        ax.hist(values, bins=bins, alpha=0.55, density=True, label=name)
    ax.set(title="text length", xlabel="log10 characters")
    ax.legend()
    bar_pairs = [
        (axes[0, 1], "language", "language mix"),
        (axes[1, 0], "topic", "predicted topic"),
        (axes[1, 1], "priority", "predicted priority"),
    ]
    for ax, key, title in bar_pairs:
        cats = sorted(set(map(str, reference[key])) | set(map(str, live[key])))
        x = np.arange(len(cats))
        for offset, data, name in ((-0.2, reference, "reference"), (0.2, live, "live")):
            values = [str(v) for v in data[key]]
            share = [values.count(c) / max(1, len(values)) for c in cats]
            ax.bar(x + offset, share, width=0.4, label=name)
        ax.set_xticks(x, cats, rotation=45, ha="right", fontsize=8)
        ax.set(title=title, ylabel="share")
        ax.legend()
    ax = axes[0, 2]
    for data, name in ((reference, "reference"), (live, "live")):
        if data["oov_share"]:
            ax.hist(
                data["oov_share"], bins=np.linspace(0, 1, 21), alpha=0.55, density=True, label=name
            )
    ax.set(title="words outside the model's vocabulary", xlabel="share of a text's words")
    ax.legend()
    ax = axes[1, 2]
    for data, name in ((reference, "reference"), (live, "live")):
        ax.hist(
            data["topic_score"], bins=np.linspace(0, 1, 21), alpha=0.55, density=True, label=name
        )
    ax.set(title="topic confidence", xlabel="probability of the topic given")
    ax.legend()
    periods = [t.strftime("%m-%d %H:00") for t in timeline.index]
    step = max(1, len(periods) // 8)
    ax = axes[0, 3]
    if len(timeline):
        ax.bar(range(len(periods)), timeline["predictions"], color="tab:blue")
        ax.set_xticks(range(0, len(periods), step), periods[::step], rotation=45, fontsize=7)
    ax.set(title="live predictions per period", ylabel="predictions")
    ax = axes[1, 3]
    if len(timeline) and "needs_review" in timeline:
        ax.plot(range(len(periods)), timeline["needs_review"], marker="o", color="tab:red")
        ax.set_xticks(range(0, len(periods), step), periods[::step], rotation=45, fontsize=7)
    else:
        ax.text(0.5, 0.5, "not flagged: serve.min_confidence is unset", ha="center", fontsize=9)
    ax.set(title="needs_review share", ylim=(0, 1))
    fig.tight_layout()
    return _save(fig, path)
