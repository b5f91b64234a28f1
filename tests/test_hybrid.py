import numpy as np
import pandas as pd
import pytest

from ticketml.hybrid import fit_weights


def test_weights_follow_the_better_model_on_validation():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=300)
    good = np.eye(3)[labels] * 0.8 + 0.2 / 3
    noise = rng.dirichlet(np.ones(3), size=300)
    both = {"topic": labels, "priority": labels}
    assert fit_weights(
        {"topic": good, "priority": noise}, {"topic": noise, "priority": good}, both
    ) == {
        "topic": {"transformer_weight": pytest.approx(0.5, abs=0.5), "val_macro_f1": 1.0},
        "priority": {"transformer_weight": pytest.approx(0.25, abs=0.25), "val_macro_f1": 1.0},
    }
    w = fit_weights({"topic": noise, "priority": noise}, {"topic": good, "priority": good}, both)
    assert w["topic"]["transformer_weight"] < 0.5


def test_export_writes_the_hybrid_and_reports_all_three_models(exported_model):
    import json

    art = exported_model / "artifacts"
    hybrid = json.loads((art / "metrics/hybrid.json").read_text())
    assert set(hybrid["weights"]) == {"topic", "priority"}
    for name in ("baseline", "onnx", "hybrid"):
        metrics = json.loads((art / "metrics" / f"{name}.json").read_text())
        assert 0 <= metrics["test"]["topic"]["macro_f1"] <= 1
    from pyfunc.core import TicketClassifier, blend

    clf = TicketClassifier.from_dir(art)
    assert clf.tfidf is not None
    texts = (
        pd.read_parquet(exported_model / "data/processed/test.parquet")["text"].head(20).tolist()
    )
    probs = clf.predict_proba(texts)
    assert np.allclose(probs["topic"].sum(1), 1)
    # the served blend carries its own calibration map; it moves the scores, never the labels
    weights = json.loads((art / "hybrid.json").read_text())
    for task in ("topic", "priority"):
        assert weights[task]["temperature"] > 0
        assert len(weights[task].get("bias", clf.label_maps[task])) == len(clf.label_maps[task])
        assert 0 <= hybrid["test"][task]["ece"] <= 1
        assert 0 <= hybrid["test"][task]["ece_uncalibrated"] <= 1
    cleaned = clf.clean(texts)
    tempered, _ = clf.transformer_parts(cleaned)
    mixed = blend(clf.hybrid_weights, tempered, clf.tfidf.predict_proba(cleaned))
    assert not np.allclose(mixed["priority"], probs["priority"])
    rows = clf.predict(texts)
    for task in ("topic", "priority"):
        expected = [clf.label_maps[task][i] for i in mixed[task].argmax(1)]
        assert [r[task] for r in rows] == expected
