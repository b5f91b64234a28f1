"""The loop end to end: a real `ticketml serve` that is killed keeps every record it wrote; the
agents' corrections change the next training set (`ticketml data preprocess.feedback=…`)."""

import json
import os
import signal
import subprocess
import sys

import httpx
import pandas as pd
import pytest

from tests.conftest import free_port, run_cli, sample, spawn, wait_for
from ticketml.monitoring.store import read_records


def serve(workdir, port: int, *overrides: str) -> subprocess.Popen:
    return spawn(
        [
            sys.executable,
            "-m",
            "ticketml",
            "serve",
            "serve.model_uri=artifacts",
            f"serve.port={port}",
            "serve.prediction_log=log",
            *overrides,
        ],
        cwd=workdir,
    )


def written(base: str) -> int:
    return int(sample(httpx.get(f"{base}/metrics").text, "ticketml_prediction_log_records_total"))


@pytest.mark.slow
def test_a_killed_server_leaves_every_record_it_wrote_whole(export_workdir):
    import time

    port = free_port()
    proc = serve(export_workdir, port)
    base = f"http://127.0.0.1:{port}"
    ids = []
    try:
        wait_for(f"{base}/ready", proc)
        for i in range(40):
            texts = [f"Printer {i} on floor {i % 5} prints blank pages", "VPN is down again"]
            r = httpx.post(f"{base}/predict/batch", json={"texts": texts})
            assert r.status_code == 200
            ids += [f"{r.headers['X-Request-Id']}:{k}" for k in range(2)]
        deadline = time.monotonic() + 30
        while written(base) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert written(base) == len(ids)
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no shutdown, no flush
        proc.communicate(timeout=30)
    records = read_records(str(export_workdir / "log"))
    assert records.attrs["torn"] == 0
    assert sorted(records["request_id"]) == sorted(ids)
    assert records["topic"].notna().all() and records["text_sha256"].str.len().eq(64).all()
    # a record a failed write cut short is skipped (and counted), the others still read
    log_file = next((export_workdir / "log").glob("predictions-*.jsonl"))
    with open(log_file, "a") as f:
        f.write('{"request_id": "torn", "time": "2026-')
    again = read_records(str(export_workdir / "log"))
    assert again.attrs["torn"] == 1 and len(again) == len(ids)


def test_agents_corrections_change_the_next_training_set(export_workdir, monkeypatch):
    """Predictions logged with their text, corrections by request id and by text, then
    `ticketml data preprocess.feedback=log`: corrected tickets carry the agent's labels, a
    ticket the export lacks is added, a correction whose text was not kept is skipped."""
    from fastapi.testclient import TestClient

    from ticketml.config import load_config
    from ticketml.serving.app import build_app

    export = pd.read_parquet(export_workdir / "data/processed/train.parquet")
    ticket = export.iloc[0]
    labels = json.loads((export_workdir / "artifacts/label_maps.json").read_text())
    new_topic = next(t for t in labels["topic"] if t != ticket["topic"])
    new_priority = next(p for p in labels["priority"] if p != ticket["priority"])
    fresh = "Кофемашина на третьем этаже показывает ошибку E42 и не варит кофе"
    overrides = ["serve.model_uri=artifacts", "serve.prediction_log=log"]
    with TestClient(build_app(load_config([*overrides, "serve.log_text=true"]), False)) as api:
        rid = api.post("/predict", json={"text": ticket["raw_text"]}).headers["X-Request-Id"]
        assert (
            api.post("/feedback", json={"request_id": rid, "topic": new_topic}).status_code == 200
        )
        fix = {"text": fresh, "topic": new_topic, "priority": new_priority}
        assert api.post("/feedback", json=fix).status_code == 200
    with TestClient(build_app(load_config(overrides), False)) as api:  # texts not kept
        rid = api.post("/predict", json={"text": "Scanner jams"}).headers["X-Request-Id"]
        assert (
            api.post("/feedback", json={"request_id": rid, "topic": new_topic}).status_code == 200
        )

    assert run_cli("data", "data.synthetic.n_samples=600", "preprocess.feedback=log") == 0
    rows = pd.concat(
        pd.read_parquet(export_workdir / f"data/processed/{s}.parquet")
        for s in ("train", "val", "test")
    ).set_index("raw_text")
    assert rows.loc[ticket["raw_text"], "topic"] == new_topic  # the agent wins
    assert rows.loc[ticket["raw_text"], "priority"] == ticket["priority"]  # not corrected: kept
    assert rows.loc[fresh, ["topic", "priority"]].tolist() == [new_topic, new_priority]
    assert rows.loc[fresh, "language"] == "ru"
    report = json.loads((export_workdir / "artifacts/data_report.json").read_text())
    assert report["feedback"] == {"corrections": 3, "without_text": 1, "relabelled": 1, "added": 1}


@pytest.mark.slow
def test_promote_gates_on_the_feedback_window_too(export_workdir, tiny_encoder):
    """A challenger let through on the test split (promote.min_delta=-1) is still stopped when it
    is worse than the champion on the agents' corrections of the last week; without the
    feedback gate the same promotion goes through."""
    import shutil

    from mlflow import MlflowClient

    from tests.conftest import tiny_overrides
    from ticketml.monitoring.store import FeedbackStore

    plain = ["model.hybrid=false", "promote.baseline_floor=false"]  # transformers only
    bad = ["paths.artifacts_dir=bad_artifacts", "paths.checkpoints_dir=bad_checkpoints", *plain]
    assert run_cli("export_onnx", "export.quantize=false", *plain) == 0
    shutil.copytree(export_workdir / "artifacts", export_workdir / "bad_artifacts")
    train = tiny_overrides(tiny_encoder)
    assert run_cli("train", *train, "train.learning_rate=1e-12", "seed=1", *bad) == 0
    assert run_cli("export_onnx", "export.quantize=false", *bad) == 0
    assert run_cli("register", *plain) == 0 and run_cli("promote", *plain) == 0  # v1 champion
    store = FeedbackStore(str(export_workdir / "log"))
    test = pd.read_parquet(export_workdir / "data/processed/test.parquet")
    for row in test.itertuples():
        store.put(None, row.raw_text, row.topic, row.priority)
    lenient = [*bad, "promote.min_delta=-1", "serve.prediction_log=log"]
    assert run_cli("register", *bad) == 0
    assert run_cli("promote", *lenient, "promote.feedback_window=7d") == 0
    client = MlflowClient(f"sqlite:///{export_workdir}/mlflow.db")
    assert str(client.get_model_version_by_alias("ticketml", "champion").version) == "1"
    v2 = client.get_model_version("ticketml", "2")
    assert v2.tags["promotion_decision"] == "rejected"
    assert "feedback (90 corrections, topic, priority)" in v2.tags["promotion_reason"]
    assert float(v2.tags["promotion_feedback_challenger_mean_macro_f1"]) < float(
        v2.tags["promotion_feedback_champion_mean_macro_f1"]
    )
    assert run_cli("promote", *lenient) == 0  # the split alone lets it through
    assert str(client.get_model_version_by_alias("ticketml", "champion").version) == "2"


@pytest.mark.slow
def test_on_the_team_stack_the_log_and_feedback_are_postgresql_tables(export_workdir, monkeypatch):
    """serve.prediction_log from $TICKETML_PREDICTION_LOG (as `ticketml stack` passes it): the
    records and the feedback land in the `ticketml` database, a repeated correction upserts."""
    import importlib.util

    if importlib.util.find_spec("pgserver") is None:
        if os.environ.get("TICKETML_REQUIRE_STACK") == "1":
            raise RuntimeError("TICKETML_REQUIRE_STACK=1 but the stack extra is not installed")
        pytest.skip("pip install -e '.[stack]' for the PostgreSQL tests")
    from fastapi.testclient import TestClient

    from ticketml.config import load_config
    from ticketml.monitoring.store import read_feedback
    from ticketml.serving.app import build_app
    from ticketml.stack import LocalPostgres, database_url

    password = "pw with @ and :"
    db = LocalPostgres(export_workdir / "pg", free_port())
    db.init(password)
    try:
        url = database_url(db.port, "ticketml", password)
        monkeypatch.setenv("TICKETML_PREDICTION_LOG", url)
        cfg = load_config(["serve.model_uri=artifacts"])
        assert cfg.serve.prediction_log == url
        with TestClient(build_app(cfg, background=False)) as api:
            ids = [
                api.post("/predict", json={"text": t}).headers["X-Request-Id"]
                for t in ("VPN is down", "Refund my invoice", "Printer jams")
            ]
            topics = sorted(api.post("/predict", json={"text": "x y"}).json()["topic_scores"])
            for topic in topics[:2]:
                answer = api.post("/feedback", json={"request_id": ids[0], "topic": topic})
                assert answer.status_code == 200
            assert answer.json()["stored"] == "replaced"
        records = read_records(url)
        assert set(ids) <= set(records["request_id"]) and len(records) == 4
        assert isinstance(records["topic_scores"].iloc[0], dict)
        feedback = read_feedback(url)
        assert len(feedback) == 1 and feedback["topic"].iloc[0] == topics[1]
        assert run_cli("monitor", "infer.model_uri=artifacts", "monitor.log_to_mlflow=false") == 0
    finally:
        db.stop()
