"""The team stack on a real PostgreSQL: MLflow tracking + registry through a server on it, and two
`ticketml tune` workers sharing one study, with the database restarted under them.

Needs the `stack` extra (pgserver, psycopg). Skipped without it, unless TICKETML_REQUIRE_STACK=1
(set by .ci/run), where a missing extra is a failure."""

import importlib.util
import os
import subprocess
import sys
import threading
import time
from urllib.parse import quote

import httpx
import mlflow
import optuna
import pytest
from mlflow import MlflowClient

from tests.conftest import free_port, run_cli, spawn, tiny_overrides, wait_for

if importlib.util.find_spec("pgserver") is None or importlib.util.find_spec("psycopg") is None:
    if os.environ.get("TICKETML_REQUIRE_STACK") == "1":
        raise RuntimeError("TICKETML_REQUIRE_STACK=1 but the stack extra is not installed")
    pytest.skip("pip install -e '.[stack]' for the PostgreSQL tests", allow_module_level=True)

# "@ : / %" and a space: the URLs the stack builds must encode it (database_url)
PASSWORD = "s3cret p@ss:w/rd%-not-for-logs"
ENCODED = quote(PASSWORD, safe="")


@pytest.fixture
def stack(tmp_path, monkeypatch):
    """PostgreSQL on a free port + an MLflow server on it (artifacts proxied), for one test."""
    from ticketml.stack import LocalPostgres, database_url

    db = LocalPostgres(tmp_path / "pg", free_port())
    db.init(PASSWORD)
    db.start()
    port = free_port()
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": database_url(db.port, "mlflow", PASSWORD)}
    server = spawn(
        [
            os.path.join(os.path.dirname(sys.executable), "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
        ],
        env=env,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{uri}/health", server, timeout=180)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        yield {"db": db, "tracking": uri, "storage": database_url(db.port, "optuna", PASSWORD)}
    finally:
        server.terminate()
        server.wait(timeout=30)
        db.stop()


def start_worker(workdir, tiny_encoder, storage: str, *extra: str) -> subprocess.Popen:
    return spawn(
        [
            sys.executable,
            "-m",
            "ticketml",
            "tune",
            *tiny_overrides(tiny_encoder),
            "tune.n_trials=3",
            *extra,
            "tune.max_epochs=2",
            "tune.pruner_startup_trials=10",
            "tune.heartbeat_s=5",
            "tune.study_name=team",
        ],
        cwd=workdir,
        env={**os.environ, "TICKETML_TUNE_STORAGE": storage},
    )


def check_study_and_runs(stack, workdir, outputs: list[str]) -> None:
    study = optuna.load_study(study_name="team", storage=stack["storage"])
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 6 and len({t.number for t in trials}) == 6
    assert all(t.state.is_finished() and t.state != optuna.trial.TrialState.FAIL for t in trials)
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 6  # no trial run twice
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    mlflow.set_tracking_uri(stack["tracking"])
    runs = mlflow.search_runs(experiment_names=["ticketml"])
    parents = runs[runs["tags.ticketml.stage"] == "tune"]
    assert len(parents) == 2
    for run_id in parents["run_id"]:
        children = runs[runs["tags.mlflow.parentRunId"] == run_id]
        assert (children["tags.mlflow.runName"].str.startswith("trial-")).sum() >= 2
    assert (runs["tags.mlflow.runName"] == "best").sum() == 1  # exactly one kept model
    assert sum(out.count("which keeps the tuned model") for out in outputs) == 1
    assert (workdir / "checkpoints/best.ckpt").is_file()
    params = runs.filter(like="params.").astype(str).to_numpy().ravel()
    assert not any(PASSWORD in str(value) or ENCODED in str(value) for value in params)
    assert all(PASSWORD not in out and ENCODED not in out for out in outputs)


@pytest.mark.slow
def test_two_tune_workers_share_one_study_and_the_model_is_promoted_through_the_server(
    stack, data_workdir, tiny_encoder
):
    """One `ticketml tune tune.workers=2`: it starts the second worker itself, the 6 trials split
    3 + 3 (the other test starts two workers by hand)."""
    assert run_cli("baseline", "baseline.max_features=3000") == 0
    tune = start_worker(
        data_workdir, tiny_encoder, stack["storage"], "tune.workers=2", "tune.n_trials=6"
    )
    out = tune.communicate(timeout=900)[0]
    assert tune.returncode == 0, out[-3000:]
    assert "tune: 6 trials over 2 workers ([3, 3])" in out and "[worker 1] " in out
    check_study_and_runs(stack, data_workdir, [out])
    assert run_cli("export_onnx") == 0 and run_cli("evaluate") == 0
    assert run_cli("register") == 0 and run_cli("promote", "promote.baseline_floor=false") == 0
    client = MlflowClient(stack["tracking"])
    assert [v.version for v in client.search_model_versions("name='ticketml'")] == ["1"]
    assert client.get_model_version_by_alias("ticketml", "champion").version == "1"
    model = mlflow.pyfunc.load_model("models:/ticketml@champion")  # artifacts through the server
    assert len(model.predict({"text": ["VPN is down"]})) == 1


@pytest.mark.slow
def test_the_study_survives_a_postgresql_restart(stack, data_workdir, tiny_encoder):
    workers = [start_worker(data_workdir, tiny_encoder, stack["storage"]) for _ in range(2)]
    study = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # restart once the first trial has finished
        try:
            study = study or optuna.load_study(study_name="team", storage=stack["storage"])
            if any(t.state.is_finished() for t in study.get_trials(deepcopy=False)):
                break
        except Exception:  # noqa: BLE001 - the study may not exist yet
            pass
        time.sleep(0.5)
    restarted = threading.Event()

    def restart():  # down for 3 s: longer than a plain restart, so that calls do fail
        stack["db"].stop()
        time.sleep(3)
        stack["db"].start()
        restarted.set()

    restarter = threading.Thread(target=restart)
    restarter.start()
    outputs = [w.communicate(timeout=900)[0] for w in workers]
    restarter.join(timeout=120)  # never leave a server started after the fixture's teardown
    assert restarted.is_set()
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    check_study_and_runs(stack, data_workdir, outputs)


def test_an_unreachable_study_database_is_one_error_line_without_the_password(workdir, capsys):
    from ticketml.stack import database_url

    url = database_url(free_port(), "optuna", PASSWORD)
    assert run_cli("tune", f"tune.storage='{url}'") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ERROR: cannot reach the study database")
    assert "ticketml:***@127.0.0.1" in err[0]
    assert PASSWORD not in err[0] and ENCODED not in err[0]


@pytest.mark.slow
def test_stack_start_and_stop_with_a_password_of_any_characters(workdir, monkeypatch, capsys):
    """`ticketml stack start` with "@ : / %" and a space in the password: the servers come up
    (the URLs encode it), nothing prints it, the logs are private; `stack stop` returns once the
    MLflow server and its job consumers have gone, and PostgreSQL is stopped."""
    import json

    from ticketml.stack import LocalPostgres

    monkeypatch.setenv("TICKETML_DB_PASSWORD", PASSWORD)
    ports = [
        f"stack.db_port={free_port()}",
        f"stack.mlflow_port={free_port()}",
        "stack.serve=false",
    ]
    assert run_cli("stack", "start", *ports) == 0
    try:
        out = capsys.readouterr().out
        assert "ticketml:***@127.0.0.1" in out and PASSWORD not in out and ENCODED not in out
        log = workdir / ".stack" / "mlflow.log"
        assert log.stat().st_mode & 0o777 == 0o600
        pgid = json.loads((workdir / ".stack" / "pids.json").read_text())["mlflow"]
        tracking = next(line.split()[-1] for line in out.splitlines() if line.startswith("mlflow"))
        assert httpx.get(f"{tracking}/health", timeout=5).status_code == 200
    finally:
        assert run_cli("stack", "stop", *ports) == 0
    with pytest.raises(ProcessLookupError):  # not one process of the server's group is left
        os.killpg(pgid, 0)
    assert not LocalPostgres(workdir / ".stack" / "postgres", 0).running()
    assert PASSWORD not in log.read_text() and ENCODED not in log.read_text()
