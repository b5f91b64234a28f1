import json

import mlflow

from tests.conftest import run_cli


def test_baseline_is_learnable_on_the_default_synthetic_data(workdir):
    """On the default data the baseline lands well above chance but below perfect."""
    assert run_cli("data") == 0
    assert run_cli("baseline") == 0
    metrics = json.loads((workdir / "artifacts/metrics/baseline.json").read_text())
    for split in ("val", "test"):
        for task in ("topic", "priority"):
            assert 0.6 <= metrics[split][task]["macro_f1"] <= 0.95, (
                split,
                task,
                metrics[split][task]["macro_f1"],
            )
            assert 0.0 <= metrics[split][task]["accuracy"] <= 1.0
            assert (
                set(metrics[split][task]["per_class"])
                and "confusion_matrix" in metrics[split][task]
            )
    for task in ("topic", "priority"):
        assert (workdir / f"artifacts/baseline/{task}.skops").is_file()
        assert (workdir / f"plots/baseline_confusion_matrix_{task}.png").stat().st_size > 1000
    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["ticketml"])
    assert sorted(runs["tags.ticketml.stage"]) == ["baseline", "preprocess"]
    run = runs[runs["tags.ticketml.stage"] == "baseline"].iloc[0]
    assert run["metrics.test_topic_macro_f1"] == metrics["test"]["topic"]["macro_f1"]
    assert run["tags.data_version"] != "unknown" and run["tags.git_commit"]
    assert run["params.baseline.C"] == "5.0"
    # the logged sklearn flavour is a skops file (no pickle) that loads back to the same model
    from ticketml.baseline import load_baseline
    from ticketml.config import load_config

    logged = mlflow.sklearn.load_model(f"runs:/{run['run_id']}/baseline_topic")
    local = load_baseline(load_config())["topic"]
    texts = ["VPN is down", "Двойное списание"]
    assert (logged.predict_proba(texts) == local.predict_proba(texts)).all()


class NotOnSkopsSafeList:
    pass


def test_a_baseline_file_with_untrusted_types_is_refused(workdir):
    import pytest
    import skops.io as sio

    from ticketml.baseline import load_baseline
    from ticketml.config import load_config
    from ticketml.errors import ModelError

    (workdir / "artifacts/baseline").mkdir(parents=True)
    for task in ("topic", "priority"):
        sio.dump(NotOnSkopsSafeList(), workdir / f"artifacts/baseline/{task}.skops")
    with pytest.raises(ModelError, match="refusing to load untrusted types.*NotOnSkopsSafeList"):
        load_baseline(load_config())
