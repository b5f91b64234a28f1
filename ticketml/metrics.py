"""Classification metrics in the contract's shape: {split: {task: {accuracy, macro_f1, ...}}}."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def class_f1(confusion: np.ndarray, k: int) -> np.ndarray:
    """F1 of each of the first `k` classes of a (label, decision) count matrix, 0 where a class
    is neither a label nor a decision (scikit-learn's zero_division=0)."""
    tp = np.diag(confusion)[:k].astype(np.float64)
    denominator = (confusion.sum(0) + confusion.sum(1))[:k]
    return np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)


def scores_from_confusion(confusion: np.ndarray, classes: int | None = None) -> tuple[float, float]:
    """(accuracy, macro-F1 over the first `classes` classes (default every one), an absent class
    scoring 0) as scikit-learn's accuracy_score and f1_score(average="macro", labels=range(
    classes), zero_division=0) give them."""
    k = confusion.shape[0] if classes is None else classes
    accuracy = float(np.trace(confusion) / max(confusion.sum(), 1))
    return accuracy, float(class_f1(confusion, k).mean())


def confusion_counts(labels, predicted, k: int) -> np.ndarray:
    """(k + 1) x (k + 1) counts of (label, decision) pairs: a label or decision outside 0..k-1 (a
    stale label map, a bug) counts in the last row or column, so that it counts against the
    classes it meets, as scikit-learn's metrics with labels=range(k) count it."""

    def bucket(values) -> np.ndarray:
        values = np.asarray(values, dtype=np.int64)
        return np.where((values >= 0) & (values < k), values, k)

    counts = np.bincount(bucket(labels) * (k + 1) + bucket(predicted), minlength=(k + 1) ** 2)
    return counts.reshape(k + 1, k + 1)


def fast_macro_f1(labels: np.ndarray, predicted: np.ndarray, k: int) -> float:
    """scikit-learn's f1_score(average="macro", labels=range(k), zero_division=0) from one
    bincount: what fitting a hybrid calls hundreds of times on the validation rows."""
    return scores_from_confusion(confusion_counts(labels, predicted, k), k)[1]


def task_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1 and per-class precision/recall(=per-class accuracy)/F1/support, on the
    rows that have a label for the task (partial labels: the others are -1); `n` counts them.
    As scikit-learn's accuracy_score, precision_recall_fscore_support and confusion_matrix give
    them with labels=range(len(labels)) and zero_division=0, from counts (tests/test_metrics.py):
    no scikit-learn import (1 s) in the stages that only score."""
    from ticketml.data.schema import labelled_rows

    y_true, y_pred = labelled_rows(y_true, y_pred)
    k = len(labels)
    counts = confusion_counts(y_true, y_pred, k)
    tp = np.diag(counts)[:k].astype(np.float64)
    support, predicted = counts[:k].sum(1), counts[:, :k].sum(0)

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.zeros(k), where=den > 0)

    prec, rec, f1 = ratio(tp, predicted), ratio(tp, support), class_f1(counts, k)
    return {
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else 0.0,
        "macro_f1": float(f1.mean()) if k else 0.0,
        "n": len(y_true),
        "per_class": {
            label: {
                "precision": float(prec[i]),
                "recall": float(rec[i]),
                "accuracy": float(rec[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": counts[:k, :k].tolist(),
    }


def evaluate_probs(
    scores: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    label_maps: dict,
    decisions: dict[str, np.ndarray] | None = None,
) -> dict:
    """Per-task metrics of the decisions (default argmax(scores), probabilities or logits)
    against label ids."""
    decisions = decisions or {task: s.argmax(axis=1) for task, s in scores.items()}
    return {task: task_metrics(labels[task], decisions[task], label_maps[task]) for task in scores}


def score(
    probs: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    label_maps: dict,
    decisions: dict[str, np.ndarray] | None = None,
) -> dict:
    """The one scorer (export, evaluate, promote's report, bench): per task, `task_metrics` of
    the decisions (default the argmax) and the ECE of the probabilities, on the rows labelled
    for that task."""
    from ticketml.calibration import ece

    out = evaluate_probs(probs, labels, label_maps, decisions)
    for task in out:
        out[task]["ece"] = ece(probs[task], labels[task])
    return out


def compact(metrics: dict) -> dict:
    """A scorer result as evaluate's report holds it: accuracy, macro-F1, ECE, rows and the F1
    of each class."""
    return {
        task: {
            "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"],
            "ece": m["ece"],
            "n": m["n"],
            "per_class_f1": {k: v["f1"] for k, v in m["per_class"].items()},
        }
        for task, m in metrics.items()
    }


def mean_macro_f1(split_metrics: dict) -> float:
    return float(np.mean([m["macro_f1"] for m in split_metrics.values()]))


def flat_metrics(metrics: dict, prefix: str = "") -> dict[str, float]:
    """{'test': {'topic': {'macro_f1': x}}} → {'test_topic_macro_f1': x, 'test_mean_macro_f1': ...}."""
    out: dict[str, float] = {}
    for split, tasks in metrics.items():
        if not isinstance(tasks, dict) or not all(isinstance(v, dict) for v in tasks.values()):
            continue
        for task, values in tasks.items():
            for key in ("accuracy", "macro_f1"):
                if key in values:
                    out[f"{prefix}{split}_{task}_{key}"] = float(values[key])
        if all("macro_f1" in v for v in tasks.values()):
            out[f"{prefix}{split}_mean_macro_f1"] = mean_macro_f1(tasks)
    return out


def summary_line(name: str, split: str, tasks: dict) -> str:
    """`baseline test: topic acc=0.918 macro_f1=0.905, priority acc=...` for the console."""
    parts = [f"{t} acc={m['accuracy']:.3f} macro_f1={m['macro_f1']:.3f}" for t, m in tasks.items()]
    return f"{name} {split}: " + ", ".join(parts)
