"""ticketml.metrics.task_metrics counts what scikit-learn's metrics give (labels=range(k),
zero_division=0), without importing scikit-learn in the stages that only score."""

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from ticketml.data.schema import UNLABELLED
from ticketml.metrics import task_metrics


@pytest.mark.parametrize("seed", range(6))
def test_task_metrics_are_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 8))
    labels = [f"c{i}" for i in range(k)]
    n = int(rng.integers(5, 400))
    y_true = rng.integers(0, k - 1 if seed % 2 else k, n)  # odd seeds: the last class is absent
    y_pred = rng.integers(0, k, n)
    right = rng.random(n) < 0.6  # most decisions right, as a model's are
    y_pred[right] = y_true[right]
    y_true[rng.random(n) < 0.1] = UNLABELLED  # partial labels: scored on the labelled rows only
    got = task_metrics(y_true, y_pred, labels)

    keep = y_true != UNLABELLED
    t, p, ids = y_true[keep], y_pred[keep], list(range(k))
    prec, rec, f1, support = precision_recall_fscore_support(
        t, p, labels=ids, average=None, zero_division=0
    )
    assert got["n"] == len(t)
    assert got["accuracy"] == pytest.approx(accuracy_score(t, p), abs=1e-12)
    assert got["macro_f1"] == pytest.approx(
        f1_score(t, p, labels=ids, average="macro", zero_division=0), abs=1e-12
    )
    assert got["confusion_matrix"] == confusion_matrix(t, p, labels=ids).tolist()
    for i, label in enumerate(labels):
        row = got["per_class"][label]
        assert row["precision"] == pytest.approx(prec[i], abs=1e-12)
        assert row["recall"] == pytest.approx(rec[i], abs=1e-12) == row["accuracy"]
        assert row["f1"] == pytest.approx(f1[i], abs=1e-12)
        assert row["support"] == support[i]


def test_a_prediction_outside_the_labels_counts_against_its_row():
    """As scikit-learn's with labels=range(k): a decision past the label map (a stale map, a
    bug) is a miss for the true class, not dropped."""
    got = task_metrics([0, 1, 1, 0], [0, 1, 5, 0], ["a", "b"])
    assert got["accuracy"] == 0.75
    assert got["per_class"]["b"]["recall"] == 0.5 and got["per_class"]["b"]["precision"] == 1.0
    assert got["macro_f1"] == pytest.approx(
        f1_score([0, 1, 1, 0], [0, 1, 5, 0], labels=[0, 1], average="macro", zero_division=0)
    )
