import mlflow
import pandas as pd

from tests.conftest import free_port, run_cli


def test_dead_tracking_server_falls_back_to_the_local_store(data_workdir, capsys, monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)
    assert run_cli("baseline", "baseline.max_features=2000") == 0
    out = capsys.readouterr().out
    assert "WARNING: MLflow setup failed: " in out and dead in out
    assert "WARNING: Continuing without MLflow tracking" in out
    mlflow.set_tracking_uri(f"sqlite:///{data_workdir}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["ticketml"])
    assert len(runs) == 1 and runs.iloc[0]["tags.ticketml.stage"] == "baseline"


def test_explicit_tracking_uri_override_wins_over_environment(data_workdir, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    assert (
        run_cli(
            "baseline",
            "baseline.max_features=2000",
            "mlflow.tracking_uri=sqlite:///explicit.db",
            "mlflow.experiment_name=other",
        )
        == 0
    )
    assert (data_workdir / "explicit.db").exists() and not (data_workdir / "env.db").exists()
    mlflow.set_tracking_uri(f"sqlite:///{data_workdir}/explicit.db")
    assert len(mlflow.search_runs(experiment_names=["other"])) == 1


def test_tracking_lost_mid_training_keeps_the_run_and_its_results(
    data_workdir, tiny_encoder, capsys, monkeypatch
):
    """Fault injection: every metric/artifact upload fails after the run has started."""
    import json

    from tests.conftest import tiny_overrides
    from ticketml import tracking

    monkeypatch.setattr(tracking, "_TRACKING_LOST", [])

    def dead(*args, **kwargs):
        raise ConnectionError("tracking server at http://127.0.0.1:5999 went away")

    monkeypatch.setattr(mlflow, "log_metrics", dead)
    monkeypatch.setattr(mlflow, "log_artifact", dead)
    assert run_cli("train", *tiny_overrides(tiny_encoder)) == 0
    out = capsys.readouterr().out
    assert out.count("WARNING: MLflow logging failed mid-run: ConnectionError") == 1
    assert "results are kept in artifacts/" in out
    metrics = json.loads((data_workdir / "artifacts/metrics/multitask.json").read_text())
    rows = len(pd.read_parquet(data_workdir / "data/processed/test.parquet"))
    assert metrics["test"]["topic"]["n"] == rows  # every test row scored after the loss
    assert (data_workdir / "checkpoints/best.ckpt").is_file()


def test_a_dead_tracking_server_is_reported_at_once_by_serving_reloads(workdir, monkeypatch):
    """Issue 25.7: /reload waited out MLflow's retry loop (245 s) against a dead server."""
    from ticketml.config import load_config
    from ticketml.predictor import ModelSource
    from ticketml.serving.state import ModelState

    dead = f"http://127.0.0.1:{free_port()}"
    cfg = load_config([f"mlflow.tracking_uri={dead}"])
    source = ModelSource(cfg, "models:/ticketml@champion")
    answer = ModelState(source).reload()  # resolving the alias is the first thing it does
    assert answer.startswith("cannot resolve models:/ticketml@champion")
    assert f"tracking server {dead} is unreachable" in answer


def test_an_experiment_created_by_another_worker_at_the_same_moment_gets_the_runs(
    data_workdir, monkeypatch, capsys
):
    """Two tune workers on a new store race to create the experiment; MLflow's set_experiment
    then returns the winner's experiment without making it active. The loser's runs must still
    go to it, not to experiment 0."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    uri = f"sqlite:///{data_workdir}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    # a new worker process: no experiment set yet (this one has set the fixture's)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    create = TrackingServiceClient.create_experiment

    def lose_the_race(self, name, *args, **kwargs):
        create(self, name, *args, **kwargs)  # the other worker wins
        raise MlflowException(f"{name!r} already exists", error_code=RESOURCE_ALREADY_EXISTS)

    monkeypatch.setattr(TrackingServiceClient, "create_experiment", lose_the_race)
    args = ("baseline.max_features=2000", "mlflow.experiment_name=new")  # not in the store yet
    assert run_cli("baseline", *args) == 0
    assert "MLflow setup failed" not in capsys.readouterr().out
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["new"])
    assert len(runs) == 1 and runs.iloc[0]["tags.ticketml.stage"] == "baseline"
    assert mlflow.search_runs(experiment_ids=["0"]).empty


def test_a_store_counts_as_moved_only_where_its_artifacts_moved_with_it(tmp_path):
    from ticketml.tracking import moved_roots

    here, old = tmp_path / "new", tmp_path / "old"
    (here / "mlruns" / "1").mkdir(parents=True)
    assert moved_roots([(1, f"{old}/mlruns/1"), (0, f"{old}/mlruns/0")], here) == {str(old)}
    assert moved_roots([(1, f"file://{old}/mlruns/1")], here) == {str(old)}
    assert moved_roots([(2, f"{old}/mlruns/2")], here) == set()  # not here: left alone
    assert moved_roots([(1, "s3://bucket/ticketml/1"), (1, None)], here) == set()
    assert moved_roots([(1, f"{here}/mlruns/1")], here) == set()  # where it was made
    (old / "mlruns" / "1").mkdir(parents=True)  # still there: artifacts kept apart on purpose
    assert moved_roots([(1, f"{old}/mlruns/1")], here) == set()
