import contextlib
import json
import shutil
import sqlite3
import subprocess
import sys

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import free_port, run_cli, tiny_overrides
from ticketml.tracking import PATH_COLUMNS


def _uri(workdir):
    return f"sqlite:///{workdir}/mlflow.db"


def test_pyfunc_model_from_the_registry_returns_the_contract_shape(export_workdir):
    assert run_cli("register") == 0
    mlflow.set_tracking_uri(_uri(export_workdir))
    client = MlflowClient()
    version = client.get_model_version_by_alias("ticketml", "challenger")
    assert str(version.version) == "1" and "test_topic_macro_f1" in version.tags
    # the tags are the served hybrid's (issue 24), the transformer and baseline beside it
    metrics = export_workdir / "artifacts" / "metrics"
    for name, prefix in (("hybrid", ""), ("onnx_int8", "transformer_"), ("baseline", "baseline_")):
        test = json.loads((metrics / f"{name}.json").read_text())["test"]
        for task in ("topic", "priority"):
            tag = float(version.tags[f"{prefix}test_{task}_macro_f1"])
            assert tag == pytest.approx(test[task]["macro_f1"], abs=1e-12)
    assert version.tags["test_topic_macro_f1"] != version.tags["transformer_test_topic_macro_f1"]
    model = mlflow.pyfunc.load_model("models:/ticketml@challenger")
    out = model.predict(pd.DataFrame({"text": ["VPN is down!", "Двойное списание 4900 руб."]}))
    assert list(out.columns) == ["topic", "priority", "topic_scores", "priority_scores"]
    for _, row in out.iterrows():
        assert abs(sum(row["topic_scores"].values()) - 1) < 1e-4
        assert row["priority"] in row["priority_scores"]
    assert len(model.predict([{"text": "one"}, {"text": "two"}, {"text": "three"}])) == 3
    assert len(model.predict({"text": ["one", "two"]})) == 2
    flagged = model.predict(pd.DataFrame({"text": ["hello"]}), params={"min_confidence": 1.0})
    assert bool(flagged["needs_review"].iloc[0]) is True
    assert model.metadata.get_input_schema().input_names() == ["text"]


def test_a_version_carries_its_model_card_and_training_data(export_workdir):
    assert run_cli("evaluate") == 0 and run_cli("register") == 0
    assert run_cli("promote", "promote.baseline_floor=false") == 0
    mlflow.set_tracking_uri(_uri(export_workdir))
    client = MlflowClient()
    version = client.get_model_version("ticketml", "1")
    card = version.description
    assert card.startswith("promoted: ")  # the decision, then the card
    for section in ("## Data", "## Model", "## Test results", "Language `en`", "## Intended use"):
        assert section in card, section
    assert "mask_urls=False" in card
    run = client.get_run(version.run_id)
    inputs = {d.dataset.name: d.tags[0].value for d in run.inputs.dataset_inputs}
    assert sorted(inputs.values()) == ["test", "training", "validation"]
    assert all(name.startswith("synthetic-") for name in inputs)
    logged = mlflow.artifacts.load_text(f"runs:/{version.run_id}/model_card.md")
    assert logged == card.split("-->", 1)[1].lstrip()
    # the served model's scores per language, as evaluate reported them
    report = json.loads((export_workdir / "artifacts/metrics/report.json").read_text())
    for lang, models in report["by_language"].items():
        served = models[report["served_model"]]
        for task in ("topic", "priority"):
            tag = float(version.tags[f"lang_{lang}_test_{task}_macro_f1"])
            assert tag == pytest.approx(served[task]["macro_f1"], abs=1e-12)
    assert {"en", "ru"} <= set(report["by_language"])
    assert run_cli("promote", "promote.baseline_floor=false") == 0  # already champion: unchanged
    assert client.get_model_version("ticketml", "1").description == card
    # the LoggedModel: named after the registered model, with the served model's test scores
    # linked to the test split they were measured on
    model = mlflow.get_logged_model(version.tags["model_id"])
    assert model.name == "ticketml"
    linked = {m.key: m for m in model.metrics}
    test_input = next(d.dataset for d in run.inputs.dataset_inputs if d.tags[0].value == "test")
    for task in ("topic", "priority"):
        metric = linked[f"test_{task}_macro_f1"]
        assert metric.value == pytest.approx(float(version.tags[f"test_{task}_macro_f1"]))
        assert (metric.dataset_name, metric.dataset_digest) == (test_input.name, test_input.digest)


def test_each_stage_run_spans_its_work_and_names_its_data(exported_model, export_workdir):
    """The baseline, train, export and evaluate runs were open while their outputs were written,
    and each lists the splits it read as dataset inputs."""
    shutil.copy(exported_model / "mlflow.db", export_workdir / "mlflow.db")  # the fixture's runs
    assert run_cli("evaluate") == 0
    mlflow.set_tracking_uri(_uri(export_workdir))
    runs = {
        r.data.tags["ticketml.stage"]: r
        for r in MlflowClient().search_runs(
            [mlflow.get_experiment_by_name("ticketml").experiment_id]
        )
    }
    metrics = export_workdir / "artifacts" / "metrics"
    outputs = {
        "baseline": metrics / "baseline.json",
        "train": metrics / "multitask.json",
        "export": metrics / "onnx.json",
        "evaluate": metrics / "report.json",
    }
    for stage, output in outputs.items():
        run = runs[stage]
        written_ms = output.stat().st_mtime * 1000
        assert run.info.start_time <= written_ms <= run.info.end_time, stage
        contexts = sorted(d.tags[0].value for d in run.inputs.dataset_inputs)
        expected = {
            "baseline": ["test", "training", "validation"],
            "train": ["test", "training", "validation"],
            "export": ["test", "validation"],
            "evaluate": ["test"],
        }[stage]
        assert contexts == expected, stage


def test_loading_and_predicting_never_imports_torch(export_workdir):
    assert run_cli("register") == 0
    code = (
        "import sys, mlflow, pandas as pd\n"
        f"mlflow.set_tracking_uri('{_uri(export_workdir)}')\n"
        "m = mlflow.pyfunc.load_model('models:/ticketml@challenger')\n"
        "print(m.predict(pd.DataFrame({'text': ['printer jam']}))['topic'][0])\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'transformers', 'lightning'))\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_each_version_runs_the_code_it_was_registered_with(export_workdir, tmp_path, monkeypatch):
    """Two versions with different serving code, loaded in one process after the installed
    package was imported: each runs its own."""
    import shutil

    import pyfunc.core
    from ticketml import registry

    assert run_cli("register") == 0
    changed = tmp_path / "pyfunc"
    shutil.copytree(registry.serving_source(), changed)
    with open(changed / "core.py", "a") as fh:
        fh.write("\nCODE_MARK = 'version 2'\n")
    monkeypatch.setattr(registry, "serving_source", lambda: changed)
    assert run_cli("register") == 0
    mlflow.set_tracking_uri(_uri(export_workdir))
    client = MlflowClient()
    tags = [client.get_model_version("ticketml", v).tags["code_sha256"] for v in ("1", "2")]
    assert tags[0] != tags[1]
    modules = []
    for version in ("1", "2", "1"):
        model = mlflow.pyfunc.load_model(f"models:/ticketml/{version}")
        module = sys.modules[type(model.unwrap_python_model().classifier).__module__]
        modules.append(module)
        assert module is not pyfunc.core
        assert module.__name__.startswith("ticketml_model_")
        text = ["VPN is down"]
        assert model.predict(pd.DataFrame({"text": text}))["topic"].iloc[0]
    assert getattr(modules[1], "CODE_MARK", None) == "version 2"
    assert not hasattr(modules[0], "CODE_MARK") and not hasattr(modules[2], "CODE_MARK")
    assert modules[0].__name__ == modules[2].__name__ == f"ticketml_model_{tags[0][:16]}.core"


@pytest.mark.slow
def test_promotion_gate_first_better_and_worse(export_workdir, tiny_encoder, capsys):
    # A deliberately bad model (learning rate ~0) in its own artifacts folder.
    # Transformers only: a hybrid would fall back to the shared baseline and hide the difference.
    bad = [
        "paths.artifacts_dir=bad_artifacts",
        "paths.checkpoints_dir=bad_checkpoints",
        "model.hybrid=false",
    ]
    import shutil

    assert run_cli("export_onnx", "export.quantize=false", "model.hybrid=false") == 0
    shutil.copytree(export_workdir / "artifacts", export_workdir / "bad_artifacts")
    assert (
        run_cli("train", *tiny_overrides(tiny_encoder), "train.learning_rate=1e-12", "seed=1", *bad)
        == 0
    )
    assert run_cli("export_onnx", "export.quantize=false", *bad) == 0
    mlflow.set_tracking_uri(_uri(export_workdir))
    client = MlflowClient()

    def alias(name):
        return str(client.get_model_version_by_alias("ticketml", name).version)

    assert run_cli("register", *bad) == 0
    assert run_cli("promote", *bad) == 0  # the baseline floor (on by default) stops a useless model
    v1 = client.get_model_version("ticketml", "1")
    assert (
        v1.tags["promotion_decision"] == "rejected"
        and "baseline floor" in v1.tags["promotion_reason"]
    )
    bad.append("promote.baseline_floor=false")  # from here on: the champion/challenger mechanics
    capsys.readouterr()
    assert run_cli("promote", *bad) == 0  # first → champion
    assert alias("champion") == "1"
    out = capsys.readouterr().out
    assert "promoted version 1 to @champion" in out and "not promoted" not in out
    assert (
        run_cli("register", "model.hybrid=false") == 0
        and run_cli("promote", "promote.baseline_floor=false") == 0
    )  # better → moves
    assert alias("champion") == "2"
    assert "promoted version 2 to @champion" in capsys.readouterr().out
    v2 = client.get_model_version("ticketml", "2")
    assert v2.tags["promotion_decision"] == "promoted"
    assert float(v2.tags["promotion_challenger_mean_macro_f1"]) >= float(
        v2.tags["promotion_champion_mean_macro_f1"]
    )
    capsys.readouterr()
    assert run_cli("register", *bad) == 0 and run_cli("promote", *bad) == 0  # worse → stays
    assert alias("champion") == "2" and alias("challenger") == "3"
    v3 = client.get_model_version("ticketml", "3")
    assert v3.tags["promotion_decision"] == "rejected" and "champion" in v3.tags["promotion_reason"]
    assert "not promoted" in capsys.readouterr().out
    assert v3.description.startswith("rejected")


@pytest.mark.parametrize(
    "challenger, champion, delta, floor, promoted",
    [
        (0.50, None, 0.0, None, True),  # first model
        (0.50, None, 0.0, 0.60, False),  # first model below the baseline floor
        (0.70, None, 0.0, 0.60, True),
        (0.70, 0.70, 0.0, None, True),  # a tie is "at least as good"
        (0.69, 0.70, 0.0, None, False),
        (0.74, 0.70, 0.05, None, False),
        (0.76, 0.70, 0.05, None, True),
        (0.76, 0.70, 0.05, 0.80, False),  # better than the champion, still under the floor
    ],
)
def test_gate_decisions(challenger, champion, delta, floor, promoted):
    from ticketml.registry import gate

    ok, reason = gate(
        "mean_macro_f1",
        {"mean_macro_f1": challenger},
        None if champion is None else {"mean_macro_f1": champion},
        delta,
        floor,
    )
    assert ok is promoted, reason
    if floor is not None and not ok:
        assert "baseline floor" in reason


def test_register_and_promote_never_fall_back_when_the_registry_is_down(
    export_workdir, capsys, monkeypatch
):
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)
    for command in ("register", "promote"):
        assert run_cli(command) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith(f"ERROR: cannot reach the model registry at {dead}")
        assert "nothing was registered or promoted" in err[-1]
    assert not (export_workdir / "mlflow.db").exists()  # no stray local registry


def test_a_project_moved_with_its_store_still_serves_and_promotes(
    export_workdir, monkeypatch, capsys
):
    # Issue 25, finding 12: MLflow records a local store's artifact paths as absolute ones, so
    # a project folder moved elsewhere (mlflow.db and mlruns/ together) could not load a single
    # version ("No such artifact"). The next command through tracking.reach repoints them.
    assert run_cli("register") == 0
    moved = export_workdir.parent / f"{export_workdir.name}-moved"
    monkeypatch.chdir(export_workdir.parent)
    shutil.move(export_workdir, moved)
    monkeypatch.chdir(moved)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # register set it, as for its child processes
    capsys.readouterr()
    assert run_cli("promote", "promote.baseline_floor=false") == 0  # loads and scores @challenger
    out = capsys.readouterr().out
    assert f"tracking store: moved from {export_workdir} to {moved};" in out
    mlflow.set_tracking_uri(_uri(moved))
    client = MlflowClient()
    version = client.get_model_version_by_alias("ticketml", "champion")
    model = mlflow.pyfunc.load_model("models:/ticketml@champion")
    assert len(model.predict(pd.DataFrame({"text": ["VPN is down", "refund please"]}))) == 2
    assert mlflow.artifacts.load_text(f"runs:/{version.run_id}/model_card.md").startswith("#")
    run = client.get_run(version.run_id)
    assert run.info.artifact_uri.startswith(f"{moved}/mlruns/")
    sources = [json.loads(d.dataset.source)["uri"] for d in run.inputs.dataset_inputs]
    assert sources and all(s.startswith(f"{moved}/data/processed/") for s in sources)
    with contextlib.closing(sqlite3.connect(moved / "mlflow.db")) as con:  # nothing points back
        for table, columns in PATH_COLUMNS.items():
            for column in columns:
                query = f"SELECT count(*) FROM {table} WHERE instr({column}, ?) > 0"
                assert con.execute(query, (f"{export_workdir}/",)).fetchone() == (0,), column
        assert (
            con.execute("SELECT storage_location FROM model_versions")
            .fetchone()[0]
            .startswith(f"{moved}/mlruns/")
        )
    # moved once: a second command finds nothing to change
    capsys.readouterr()
    assert run_cli("promote", "promote.baseline_floor=false") == 0
    assert "tracking store: moved" not in capsys.readouterr().out
