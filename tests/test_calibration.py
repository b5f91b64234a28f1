import numpy as np
import pytest

from ticketml.calibration import ece, fit_temperature, nll, routing_table, softmax


def _overconfident(n=4000, k=5, true_t=2.5, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(n, k))
    probs = softmax(logits, true_t)  # the real label distribution is flatter than the logits say
    labels = np.array([rng.choice(k, p=p) for p in probs])
    return logits, labels


def test_temperature_is_recovered_and_calibration_improves_without_changing_argmax():
    logits, labels = _overconfident()
    t = fit_temperature(logits[:2000], labels[:2000])
    assert t == pytest.approx(2.5, rel=0.15)
    test_logits, test_labels = logits[2000:], labels[2000:]
    before, after = softmax(test_logits), softmax(test_logits, t)
    assert ece(after, test_labels) < ece(before, test_labels) / 2
    assert nll(after, test_labels) < nll(before, test_labels)
    assert (before.argmax(1) == after.argmax(1)).all()


def test_ece_of_a_perfectly_calibrated_predictor_is_small():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(4), size=20000)
    labels = np.array([rng.choice(4, p=p) for p in probs])
    assert ece(probs, labels) < 0.02


def test_routing_table_coverage_falls_and_accuracy_rises_with_the_threshold():
    logits, labels = _overconfident(true_t=1.0)
    rows = routing_table(softmax(logits), labels)
    coverage = [r["coverage"] for r in rows]
    accuracy = [r["accuracy"] for r in rows]
    assert coverage == sorted(coverage, reverse=True) and accuracy == sorted(accuracy)
    assert rows[0]["threshold"] == 0.5 and rows[-1]["threshold"] == 0.9
