import mlflow
import optuna
import pytest

from tests.conftest import run_cli, tiny_overrides
from ticketml.errors import ConfigError


def _tune(tiny_encoder, *extra):
    return run_cli(
        "tune",
        *tiny_overrides(tiny_encoder),
        "tune.max_epochs=2",
        "tune.limit_train_batches=1.0",
        "tune.storage=sqlite:///optuna.db",
        *extra,
    )


@pytest.mark.slow  # end to end: over 10 s on 2 cores
def test_tune_logs_parent_with_nested_trials_and_resumes_the_study(data_workdir, tiny_encoder):
    assert _tune(tiny_encoder, "tune.n_trials=2", "tune.pruner_startup_trials=5") == 0
    mlflow.set_tracking_uri(f"sqlite:///{data_workdir}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["ticketml"])
    parent = runs[runs["tags.ticketml.stage"] == "tune"]
    assert len(parent) == 1
    children = runs[runs["tags.mlflow.parentRunId"] == parent.iloc[0]["run_id"]]
    assert sorted(children["tags.mlflow.runName"]) == ["best", "trial-0", "trial-1"]
    assert (children["tags.git_commit"] == parent.iloc[0]["tags.git_commit"]).all()
    # the kept run: the kept trial's per-epoch curves, tagged like every stage run
    best = children[children["tags.mlflow.runName"] == "best"].iloc[0]
    trial = children[children["tags.mlflow.runName"] == f"trial-{best['tags.optuna.best_trial']}"]
    client = mlflow.MlflowClient()
    curve = [m.value for m in client.get_metric_history(best["run_id"], "val/mean_macro_f1")]
    trial_curve = client.get_metric_history(trial.iloc[0]["run_id"], "val/mean_macro_f1")
    assert len(curve) == 2 and curve == [m.value for m in trial_curve]
    assert (
        best["tags.git_commit"] and best["tags.data_version"] == parent.iloc[0]["tags.data_version"]
    )
    contexts = client.get_run(parent.iloc[0]["run_id"]).inputs.dataset_inputs
    assert sorted(d.tags[0].value for d in contexts) == ["training", "validation"]
    assert any(
        c.startswith("params.best.") for c in parent.columns if parent.iloc[0][c] is not None
    )
    assert (data_workdir / "artifacts/metrics/multitask.json").is_file()
    assert (data_workdir / "checkpoints/best.ckpt").is_file()
    assert _tune(tiny_encoder, "tune.n_trials=1", "tune.pruner_startup_trials=5") == 0
    study = optuna.load_study(study_name="ticketml", storage=f"sqlite:///{data_workdir}/optuna.db")
    assert len(study.trials) == 3


@pytest.mark.slow  # end to end: over 10 s on 2 cores
def test_a_clearly_bad_trial_is_pruned(data_workdir, tiny_encoder):
    good = "{train.learning_rate: 0.001, train.batch_size: 16, model.dropout: 0.0, model.pooling: mean, model.loss_weights.priority: 1.0}"
    bad = "{train.learning_rate: 1.0, train.batch_size: 16, model.dropout: 0.0, model.pooling: mean, model.loss_weights.priority: 1.0}"
    assert (
        _tune(
            tiny_encoder,
            "tune.n_trials=2",
            "tune.study_name=prune",
            f"tune.enqueue_trials=[{good},{bad}]",
        )
        == 0
    )
    study = optuna.load_study(study_name="prune", storage=f"sqlite:///{data_workdir}/optuna.db")
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]
    assert study.trials[1].params["train.learning_rate"] == 1.0
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{data_workdir}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["ticketml"]).set_index("tags.mlflow.runName")
    assert runs.loc["trial-1", "tags.optuna.state"] == "pruned"
    assert runs.loc["trial-1", "status"] == "FINISHED"  # stopped as planned, not FAILED
    assert runs.loc["trial-0", "status"] == "FINISHED"


def test_the_default_enqueued_trial_lies_in_the_default_search_space():
    from ticketml.config import load_config
    from ticketml.training.tune import check_enqueued, search_space

    cfg = load_config([])
    check_enqueued(cfg.tune.enqueue_trials, search_space(cfg.tune.search_space))
    # train.learning_rate=auto goes in as the number this machine trains with (a float
    # distribution takes numbers): on the CPU MiniLM's 1e-4, on a GPU its 5e-5
    import torch

    from ticketml.training.tune import enqueued_rates

    default = enqueued_rates(cfg)[0]
    assert default["train.learning_rate"] == (5e-5 if torch.cuda.is_available() else 1e-4)
    assert default["train.batch_size"] == "auto" and default["model.pooling"] == "mean"
    bad = load_config(["tune.search_space.train.batch_size.choices=[16,32]"])
    with pytest.raises(ConfigError, match=r"train.batch_size='auto': not one of .*\[16, 32\]"):
        check_enqueued(bad.tune.enqueue_trials, search_space(bad.tune.search_space))


def test_workers_creating_the_study_tables_at_once_open_the_storage_again(tmp_path, monkeypatch):
    """Two workers on an empty PostgreSQL: the loser's CREATE fails with a unique violation on
    the catalogue; it must open the storage again, not stop with "cannot reach"."""
    import sqlalchemy.exc

    from ticketml.config import load_config
    from ticketml.training import study

    cfg = load_config([f"tune.storage=sqlite:///{tmp_path}/optuna.db"])
    real_init, calls = study.RetryingStorage.__init__, []

    def racing_init(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise sqlalchemy.exc.IntegrityError(
                "CREATE TABLE studies", {}, Exception('duplicate key "pg_type_typname_nsp_index"')
            )
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(study.RetryingStorage, "__init__", racing_init)
    storage = study.make_storage(cfg.tune)
    assert len(calls) == 2 and storage.get_all_studies() == []
    calls.clear()
    monkeypatch.setattr(
        study.RetryingStorage,
        "__init__",
        lambda self, *a, **k: (_ for _ in ()).throw(sqlalchemy.exc.ArgumentError("bad URL")),
    )
    with pytest.raises(ConfigError, match="cannot reach the study database"):
        study.make_storage(cfg.tune)  # anything else is one clear error, at once


def test_tune_workers_auto_is_one_off_a_gpu_or_on_sqlite_and_several_need_a_server():
    from ticketml.config import load_config
    from ticketml.training.tune import run_tune, tune_workers

    server = "tune.storage=postgresql+psycopg://u:p@127.0.0.1:1/optuna"
    assert tune_workers(load_config(["train.accelerator=cpu", server])) == 1  # auto off a GPU
    assert tune_workers(load_config(["train.accelerator=cpu"])) == 1  # auto on SQLite
    assert tune_workers(load_config(["tune.workers=3", server])) == 3
    with pytest.raises(ConfigError, match="database server"):
        tune_workers(load_config(["tune.workers=2", "tune.storage=sqlite:///optuna.db"]))
    for bad in ("0", "two"):
        with pytest.raises(ConfigError, match="auto or a whole number"):
            tune_workers(load_config([f"tune.workers={bad}", server]))
    # the workers it would start need the overrides the study was composed from
    with pytest.raises(ConfigError, match="need the overrides"):
        run_tune(load_config(["tune.workers=2", server]))
