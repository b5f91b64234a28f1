import numpy as np
import pytest

from pyfunc.probability import decide, scaled
from ticketml.calibration import (
    calibrate,
    ece,
    ece_noise,
    fit_calibration,
    fit_scaling,
    fit_temperature,
    nll,
    routing_table,
    softmax,
)


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


def _prior_shifted(n=6000, seed=2):
    """Logits of a model trained with class weights: the rare class is inflated by +1.5 and the
    whole thing is overconfident (x2)."""
    rng = np.random.default_rng(seed)
    priors = np.array([0.7, 0.2, 0.1])
    labels = rng.choice(3, size=n, p=priors)
    evidence = rng.normal(0, 1.0, size=(n, 3))
    evidence[np.arange(n), labels] += 1.5
    true_logits = 1.5 * evidence + np.log(priors)  # the real posterior's logits (+ a constant)
    shifted = 2.0 * (true_logits + np.array([-0.8, 0.3, 1.5]))
    return shifted, labels


def test_bias_corrected_scaling_fixes_a_prior_shift_that_a_temperature_cannot():
    logits, labels = _prior_shifted()
    val, test = slice(0, 3000), slice(3000, None)
    scaling = fit_scaling(logits[val], labels[val])
    assert scaling["temperature"] == pytest.approx(2.0, rel=0.2)
    assert np.mean(scaling["bias"]) == pytest.approx(0.0, abs=1e-9)
    t_only = softmax(logits[test], fit_temperature(logits[val], labels[val]))
    with_bias = scaled(logits[test], scaling)
    assert nll(with_bias, labels[test]) < nll(t_only, labels[test])
    # the calibrated scores of each class average to its real frequency; a temperature alone
    # leaves the rare class inflated
    assert abs(with_bias[:, 2].mean() - (labels[test] == 2).mean()) < 0.02
    assert t_only[:, 2].mean() - (labels[test] == 2).mean() > 0.05


def test_calibration_changes_the_scores_never_the_decisions():
    logits, labels = _prior_shifted()
    report = calibrate(logits[:3000], labels[:3000], logits[3000:], labels[3000:])
    scaling = report["scaling"]
    probs = scaled(logits[3000:], scaling)
    assert (probs.argmax(1) != logits[3000:].argmax(1)).any()  # the bias moves the top score...
    assert (decide(probs, scaling) == logits[3000:].argmax(1)).all()  # ...not the label
    assert report["macro_f1_calibrated"] == report["macro_f1_uncalibrated"]
    assert report["ece"] < report["ece_uncalibrated"]
    assert report["nll"] < report["nll_uncalibrated"]


def test_a_class_missing_from_validation_keeps_a_finite_bias():
    logits, labels = _prior_shifted(n=2000)
    keep = labels != 2
    scaling = fit_scaling(logits[keep], labels[keep])
    assert np.isfinite(scaling["bias"]).all() and np.isfinite(scaling["temperature"])
    assert np.isfinite(scaled(logits, scaling)).all()


def test_the_bias_is_shipped_only_where_it_wins_in_cross_validation():
    shifted, labels = _prior_shifted()
    chosen = fit_calibration(shifted[:3000], labels[:3000])
    assert "bias" in chosen  # a real prior shift: the bias wins held-out NLL
    cv = chosen["selected_by"]["cv_nll"]
    assert cv["temperature_bias"] < cv["temperature"]
    logits, labels = _overconfident()  # no prior shift: k more parameters buy nothing
    chosen = fit_calibration(logits[:600], labels[:600])
    assert "bias" not in chosen and chosen["temperature"] == pytest.approx(2.5, rel=0.25)


def _noisy_labels(n=4000, k=6, noise=0.08, seed=3):
    """A sharp model of clean labels, scored on labels of which `noise` were redrawn at random
    (a ticket filed under the wrong queue): no text explains those."""
    rng = np.random.default_rng(seed)
    clean = rng.integers(k, size=n)
    logits = rng.normal(0, 1, size=(n, k))
    logits[np.arange(n), clean] += rng.uniform(2, 8, size=n)  # confident, and right, on clean rows
    labels = np.where(rng.random(n) < noise, rng.integers(k, size=n), clean)
    return logits, labels


def test_a_floor_of_label_noise_is_shipped_where_it_wins_and_caps_the_confidence():
    logits, labels = _noisy_labels()
    chosen = fit_calibration(logits[:2000], labels[:2000])
    cv = chosen["selected_by"]["cv_nll"]
    assert "floor" in chosen and cv["temperature_floor"] < cv["temperature"]
    # 8% redrawn over 6 classes: 1/6 of them land on the right label anyway
    assert chosen["floor"] == pytest.approx(0.08, abs=0.03)
    test, test_labels = logits[2000:], labels[2000:]
    probs = scaled(test, chosen)
    assert probs.max() <= 1 - chosen["floor"] + chosen["floor"] / 6 + 1e-12
    assert np.allclose(probs.sum(axis=1), 1)
    # better than the best a temperature alone can do, on held-out rows; labels unchanged
    tempered = softmax(test, fit_temperature(logits[:2000], labels[:2000]))
    assert ece(probs, test_labels) < ece(tempered, test_labels) - 0.01
    assert nll(probs, test_labels) < nll(tempered, test_labels)
    assert (decide(probs, chosen) == test.argmax(1)).all()


def test_no_floor_on_clean_labels():
    logits, labels = _overconfident()  # labels drawn from the model's own (tempered) distribution
    chosen = fit_calibration(logits[:2000], labels[:2000])
    assert "floor" not in chosen


def test_decisions_with_bias_and_floor_are_those_of_the_bias_alone():
    logits, labels = _prior_shifted()
    scaling = {**fit_scaling(logits, labels), "floor": 0.1}
    plain = {k: v for k, v in scaling.items() if k != "floor"}
    assert (decide(scaled(logits, scaling), scaling) == decide(scaled(logits, plain), plain)).all()


def test_ece_noise_is_what_a_calibrated_model_scores_and_miscalibration_exceeds_it():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.full(3, 0.7), size=600)
    labels = (rng.random((600, 1)) > np.cumsum(probs, axis=1)).sum(1)  # drawn from probs
    noise = ece_noise(probs)
    assert 0.01 < noise["mean"] < noise["p95"] < 0.08  # 600 rows: a few points of pure noise
    assert ece(probs, labels) < noise["p95"]
    # the same rows, told with more confidence than they have: far outside the noise
    sharp = probs**3 / (probs**3).sum(1, keepdims=True)
    assert ece(sharp, labels) > 2 * ece_noise(sharp)["p95"]
    # more rows, less noise
    assert ece_noise(np.tile(probs, (10, 1)))["mean"] < noise["mean"] / 2


def test_a_calibrated_model_on_few_rows_ships_no_map_and_an_overconfident_one_a_temperature():
    # labels drawn from the model's own probabilities: a fitted map only follows the noise of 600
    # validation rows, so none (the identity, temperature 1) is shipped, on most such draws
    shipped = []
    for seed in range(8):
        logits, labels = _overconfident(n=600, true_t=1.0, seed=seed)
        chosen = fit_calibration(logits, labels)
        assert list(chosen["selected_by"]["cv_nll"])[0] == "identity"
        if chosen["temperature"] == 1.0 and "bias" not in chosen and "floor" not in chosen:
            assert np.allclose(scaled(logits, chosen), softmax(logits))
            shipped.append(seed)
    assert len(shipped) >= 6, shipped
    logits, labels = _overconfident(n=600)  # the real distribution is flatter: T = 2.5
    chosen = fit_calibration(logits, labels)
    cv = chosen["selected_by"]["cv_nll"]
    assert cv["identity"] > cv["temperature"] + 0.05
    assert chosen["temperature"] == pytest.approx(2.5, rel=0.25)
