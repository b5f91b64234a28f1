import numpy as np
import pandas as pd
import pytest

from pyfunc.core import combine, hybrid_proba
from pyfunc.probability import softmax
from pyfunc.text import script
from pyfunc.text import scripts as text_scripts
from ticketml.hybrid import blend_weight, combiner_for, fit_hybrid, fit_task, macro_f1


def _probs(rng, labels, k, strength):
    z = rng.normal(size=(len(labels), k))
    z[np.arange(len(labels)), labels] += strength
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def test_the_blend_weight_follows_the_better_model_on_validation():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=300)
    good = np.eye(3)[labels] * 0.8 + 0.2 / 3
    noise = rng.dirichlet(np.ones(3), size=300)
    assert blend_weight(good, noise, labels)["transformer_weight"] >= 0.5
    assert blend_weight(noise, good, labels)["transformer_weight"] < 0.5
    assert blend_weight(noise, good, labels)["val_macro_f1"] == 1.0


def test_the_stacker_ships_where_it_wins_in_cross_validation_and_the_blend_elsewhere():
    rng = np.random.default_rng(1)
    k, n = 6, 2400
    labels = rng.integers(0, k, size=n)
    # two models with independent errors: their product (what a linear model on log-probabilities
    # can express) beats any weighted average of them
    a, b = _probs(rng, labels, k, 1.5), _probs(rng, labels, k, 1.5)
    entry = fit_task(a, b, labels, combiner="cv")
    assert entry["method"] == "stack"
    cv = entry["chosen_by"]["cv_macro_f1"]
    assert max(v for name, v in cv.items() if name != "blend") > cv["blend"] + 0.01
    assert np.array(entry["coef"]).shape == (2 * k, k) and entry["temperature"] > 0
    # a baseline that adds nothing: the one-parameter blend ties or wins, and ships
    useless = np.full((n, k), 1 / k)
    good = np.eye(k)[labels] * 0.9 + 0.1 / k
    assert fit_task(good, useless, labels, combiner="cv")["method"] == "blend"
    assert fit_task(a, b, labels, combiner="blend")["method"] == "blend"
    with pytest.raises(Exception, match="model.combiner"):
        fit_task(a, b, labels, combiner="mean")
    with pytest.raises(ValueError, match="combiner_for"):  # auto is resolved before fitting
        fit_task(a, b, labels, combiner="auto")


def test_a_product_hybrid_recovers_two_halves_of_the_evidence_a_blend_cannot():
    # each model holds independent evidence about the label (a product of experts, as
    # train.baseline_product trains the transformer): only their product gets every row right
    rng = np.random.default_rng(5)
    k, n = 5, 1500
    a, b = rng.normal(scale=2.0, size=(n, k)), rng.normal(scale=2.0, size=(n, k))
    labels = (a + b).argmax(1)
    transformer, baseline = np.exp(a), np.exp(b)
    transformer /= transformer.sum(1, keepdims=True)
    baseline /= baseline.sum(1, keepdims=True)
    entry = fit_task(transformer, baseline, labels, combiner=combiner_for("blend", True, False))
    assert entry["method"] == "product" and entry["transformer_weight"] == 0.5
    served = combine(entry, transformer, baseline)
    np.testing.assert_allclose(served.sum(1), 1.0)
    assert macro_f1(labels, served) == 1.0
    assert blend_weight(transformer, baseline, labels)["val_macro_f1"] < 0.97
    # a transformer trained on its own keeps model.combiner; auto is the pool for one with its
    # token layer (model.lexical), the blend for one without
    assert (
        combiner_for("blend", False, True) == "blend" and combiner_for("cv", False, False) == "cv"
    )
    assert combiner_for("auto", False, True) == "pool"
    assert combiner_for("auto", False, False) == "blend"
    assert combiner_for("auto", True, True) == "product"


def test_a_pool_fits_both_weights_by_nll_and_serves_what_it_fitted():
    # both models right but each too soft (logits halved) and one sharper than the other: the
    # evidence is a + b, which only weights of 2 and 2 restore; a product (w + (1 - w) = 1)
    # cannot sharpen, the pool does, and its val NLL is below the product's
    rng = np.random.default_rng(7)
    k, n = 4, 3000
    a, b = rng.normal(scale=2.0, size=(n, k)), rng.normal(scale=2.0, size=(n, k))
    labels = np.array(
        [rng.choice(k, p=p) for p in np.exp(a + b) / np.exp(a + b).sum(1, keepdims=True)]
    )
    soft = [np.exp(x / 2) / np.exp(x / 2).sum(1, keepdims=True) for x in (a, b)]
    entry = fit_task(soft[0], soft[1], labels, combiner="pool")
    assert entry["method"] == "pool"
    assert entry["transformer_weight"] == pytest.approx(2.0, abs=0.25)
    assert entry["baseline_weight"] == pytest.approx(2.0, abs=0.25)
    served = combine(entry, soft[0], soft[1])
    np.testing.assert_allclose(
        served,
        softmax(
            entry["transformer_weight"] * np.log(soft[0])
            + entry["baseline_weight"] * np.log(soft[1])
        ),
        rtol=1e-6,
    )
    product = combine(blend_weight(soft[0], soft[1], labels, "product"), soft[0], soft[1])
    nll = lambda p: -np.log(p[np.arange(n), labels]).mean()  # noqa: E731
    assert nll(served) < nll(product) - 0.05
    # served through hybrid.json as the other combinations are
    both = ("topic", "priority")
    proba = hybrid_proba(
        dict.fromkeys(both, entry),
        dict.fromkeys(both, soft[0]),
        dict.fromkeys(both, soft[1]),
        calibrated=False,
    )
    np.testing.assert_allclose(proba["priority"], served)


def test_rows_without_a_label_are_left_out_of_the_fit():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, size=800)
    a, b = _probs(rng, labels, 4, 2.0), _probs(rng, labels, 4, 2.0)
    partial = labels.copy()
    partial[::3] = -1
    both = fit_hybrid(
        {"topic": a, "priority": a},
        {"topic": b, "priority": b},
        {"topic": labels, "priority": partial},
        combiner="cv",
    )
    kept = partial >= 0
    alone = fit_task(a[kept], b[kept], labels[kept], combiner="cv")
    assert both["priority"]["coef"] == alone["coef"]
    probs = hybrid_proba(both, {"topic": a, "priority": a}, {"topic": b, "priority": b})
    assert np.allclose(probs["priority"].sum(1), 1)
    # uncalibrated scores have the calibrated ones' decisions' source: combine itself
    raw = hybrid_proba(both, {"topic": a, "priority": a}, {"topic": b, "priority": b}, False)
    assert np.allclose(raw["topic"], combine(both["topic"], a, b))


def test_export_writes_the_hybrid_and_reports_all_three_models(exported_model):
    import json

    art = exported_model / "artifacts"
    hybrid = json.loads((art / "metrics/hybrid.json").read_text())
    assert set(hybrid["weights"]) == {"topic", "priority"}
    baseline = json.loads((art / "metrics/baseline.json").read_text())
    test = pd.read_parquet(exported_model / "data/processed/test.parquet")
    for task in ("topic", "priority"):  # both learn: above always answering the commonest label
        majority = test[task].value_counts(normalize=True).iloc[0]
        assert hybrid["test"][task]["accuracy"] > majority + 0.1
        assert baseline["test"][task]["accuracy"] > majority + 0.1
    from pyfunc.core import TicketClassifier

    clf = TicketClassifier.from_dir(art)
    assert clf.tfidf is not None
    texts = (
        pd.read_parquet(exported_model / "data/processed/test.parquet")["text"].head(20).tolist()
    )
    probs = clf.predict_proba(texts)
    assert np.allclose(probs["topic"].sum(1), 1)
    # the served hybrid carries its own calibration map; it moves the scores, never the labels
    weights = json.loads((art / "hybrid.json").read_text())
    for task in ("topic", "priority"):
        # model.combiner=auto, a CPU-trained transformer (no token layer): the blend
        assert weights[task]["method"] == "blend"
        assert weights[task]["chosen_by"]["combiner"] == "blend"
        assert weights[task]["temperature"] > 0
        assert len(weights[task].get("bias", clf.label_maps[task])) == len(clf.label_maps[task])
        assert hybrid["test"][task]["ece"] < hybrid["test"][task]["ece_uncalibrated"] + 0.1
    cleaned = clf.clean(texts)
    tempered, _ = clf.transformer_parts(cleaned)
    mixed = hybrid_proba(
        weights, tempered, clf.tfidf.predict_proba(cleaned), False, text_scripts(cleaned)
    )
    assert not np.allclose(mixed["priority"], probs["priority"])
    rows = clf.predict(texts)
    for task in ("topic", "priority"):
        expected = [clf.label_maps[task][i] for i in mixed[task].argmax(1)]
        assert [r[task] for r in rows] == expected


def _two_scripts(rng, k: int = 5, n: int = 1200):
    """Labels, scripts (a third Cyrillic), the transformer good on Latin text and guessing on
    Cyrillic (an English vocabulary), the baseline middling on both."""
    labels = rng.integers(0, k, size=n)
    scripts = np.where(np.arange(n) % 3 == 0, "cyrillic", "latin")
    cyrillic = scripts == "cyrillic"
    transformer = _probs(rng, labels, k, 3.0)
    transformer[cyrillic] = rng.dirichlet(np.ones(k), size=int(cyrillic.sum()))
    return labels, scripts, cyrillic, transformer, _probs(rng, labels, k, 1.2)


def test_a_script_gets_its_own_blend_weight_where_that_wins_cross_validation():
    rng = np.random.default_rng(3)
    labels, scripts, cyrillic, transformer, baseline = _two_scripts(rng)
    entry = fit_task(transformer, baseline, labels, "blend", 0, scripts)
    assert entry["method"] == "blend"
    assert entry["by_script"]["cyrillic"] < entry["transformer_weight"] - 0.3
    assert "latin" not in entry["by_script"] or entry["by_script"]["latin"] > 0.5
    with pytest.raises(ValueError, match="per script"):
        combine(entry, transformer, baseline)  # never silently one weight
    mixed = combine(entry, transformer, baseline, scripts)
    w = entry["by_script"]["cyrillic"]
    assert np.allclose(mixed[cyrillic], w * transformer[cyrillic] + (1 - w) * baseline[cyrillic])
    one = combine({**entry, "by_script": {}}, transformer, baseline)
    f1 = {
        name: macro_f1(labels[cyrillic], p[cyrillic]) for name, p in (("one", one), ("by", mixed))
    }
    assert f1["by"] > f1["one"] + 0.02
    # one script, or a transformer as good on both: one weight, as before
    assert "by_script" not in fit_task(transformer, baseline, labels, "blend", 0, None)
    even = _probs(rng, labels, 5, 3.0)
    assert "by_script" not in fit_task(even, baseline, labels, "blend", 0, scripts)


def test_a_pool_weighs_each_script_by_its_own_fit_where_that_wins_cross_validation():
    # the case the blend's test has: an English encoder guessing on Cyrillic text; one pool for
    # all rows keeps some of its guesses there (the demo model's Russian topic: 0.831 -> 0.809)
    labels, scripts, cyrillic, transformer, baseline = _two_scripts(np.random.default_rng(3))
    entry = fit_task(transformer, baseline, labels, "pool", 0, scripts)
    assert entry["method"] == "pool"
    a, b = entry["by_script"]["cyrillic"]
    assert a < 0.1 < entry["transformer_weight"] and b > 0.5  # the baseline's rows there
    with pytest.raises(ValueError, match="pool weighs its halves per script"):
        combine(entry, transformer, baseline)
    mixed = combine(entry, transformer, baseline, scripts)
    expected = softmax(a * np.log(transformer[cyrillic]) + b * np.log(baseline[cyrillic]))
    assert np.allclose(mixed[cyrillic], expected)
    a, b = entry["by_script"].get("latin", [entry["transformer_weight"], entry["baseline_weight"]])
    expected = softmax(a * np.log(transformer[~cyrillic]) + b * np.log(baseline[~cyrillic]))
    assert np.allclose(mixed[~cyrillic], expected)
    one = combine({**entry, "by_script": {}}, transformer, baseline)
    assert (
        macro_f1(labels[cyrillic], mixed[cyrillic])
        > macro_f1(labels[cyrillic], one[cyrillic]) + 0.02
    )
    served = hybrid_proba({"topic": entry, "priority": entry}, {"topic": transformer, "priority": transformer}, {"topic": baseline, "priority": baseline}, calibrated=False, scripts=list(scripts))  # fmt: skip
    assert np.allclose(served["topic"], mixed)
    # one script: one pool, as before
    assert "by_script" not in fit_task(transformer, baseline, labels, "pool", 0, None)


def test_the_script_of_a_text_is_its_majority_alphabet():
    assert script("Не могу подключиться к VPN") == "cyrillic"
    assert script("VPN не работает") == "cyrillic"  # 10 Cyrillic letters, 3 Latin
    assert script("Error in module Auth: ошибка") == "latin"  # 16 Latin, 6 Cyrillic
    assert script("Printer on floor 3 is jammed") == "latin"
    assert script("Drucker defekt, Störung seit März") == "latin"
    assert script("12345 !!!") == "latin"  # no letters: the default
