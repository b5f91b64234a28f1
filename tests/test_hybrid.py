import numpy as np
import pandas as pd
import pytest

from pyfunc.tfidf import TfidfClassifier
from ticketml.baseline import build_pipeline, predict_proba
from ticketml.config import load_config
from ticketml.hybrid import export_baseline, fit_weights


def _texts(n=300, seed=0):
    from ticketml.data.synthetic import generate

    return generate(n, seed=seed)


@pytest.mark.parametrize("priorities", [("low", "medium", "high"), ("low", "high")])
def test_exported_baseline_matches_scikit_learn(tmp_path, priorities):
    df = _texts()
    df = df[df["priority"].isin(priorities)]
    cfg = load_config(["baseline.max_features=5000"])
    label_maps = {"topic": sorted(df["topic"].unique()), "priority": list(priorities)}
    models = {
        t: build_pipeline(cfg.baseline, 0).fit(df["text"], df[t]) for t in ("topic", "priority")
    }
    export_baseline(models, label_maps, tmp_path / "baseline.npz")
    ours = TfidfClassifier(tmp_path / "baseline.npz")
    texts = [
        *_texts(50, seed=9)["text"],
        "",
        "a",
        "Wi-Fi!!  VPN\\n\\tдоступ   к  сети",
        "ÄÖÜ ß 😀 token",
    ]
    got, ref = ours.predict_proba(texts), predict_proba(models, texts, label_maps)
    for task in ("topic", "priority"):
        assert got[task].shape == ref[task].shape
        assert np.abs(got[task] - ref[task]).max() < 1e-9


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
    from pyfunc.core import TicketClassifier

    clf = TicketClassifier.from_dir(art)
    assert clf.tfidf is not None
    texts = (
        pd.read_parquet(exported_model / "data/processed/test.parquet")["text"].head(20).tolist()
    )
    probs = clf.predict_proba(texts)
    assert np.allclose(probs["topic"].sum(1), 1)
