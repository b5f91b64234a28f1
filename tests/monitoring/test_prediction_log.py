"""The prediction log and POST /feedback through the real app (build_app: the wiring `ticketml
serve` uses) on a real exported model, files on disk."""

import errno
import re

import pytest
from fastapi.testclient import TestClient

from tests.conftest import sample
from ticketml.config import load_config
from ticketml.monitoring.features import text_hash
from ticketml.monitoring.store import read_feedback, read_records
from ticketml.serving.app import build_app

RUSSIAN = "Не могу подключиться к VPN с ноутбука, пишет ошибка 809"
ENGLISH = ["The invoice for November was charged twice", "Password reset link has expired"]


def app_for(workdir, *overrides):
    cfg = load_config(
        ["serve.model_uri=artifacts", f"serve.prediction_log={workdir / 'log'}", *overrides]
    )
    return build_app(cfg, background=False)


def metric(api, name: str, **labels: str) -> float:
    value = sample(api.get("/metrics").text, name, **labels)
    assert value is not None, f"{name} {labels} not in /metrics"
    return value


def test_every_answer_is_logged_under_its_request_id(export_workdir):
    with TestClient(app_for(export_workdir)) as api:
        one = api.post("/predict", json={"text": RUSSIAN}, headers={"X-Request-Id": "ticket-17"})
        batch = api.post("/predict/batch", json={"texts": ENGLISH})
        assert one.status_code == batch.status_code == 200
        assert one.headers["X-Request-Id"] == "ticket-17"
        batch_id = batch.headers["X-Request-Id"]
        assert re.fullmatch(r"[0-9a-f]{32}", batch_id)
        api.app.state.prediction_log.flush()
        assert metric(api, "ticketml_prediction_log_records_total") == 3
    records = read_records(str(export_workdir / "log")).set_index("request_id")
    assert sorted(records.index) == sorted(["ticket-17", f"{batch_id}:0", f"{batch_id}:1"])
    answers = {
        "ticket-17": one.json(),
        **{f"{batch_id}:{i}": p for i, p in enumerate(batch.json()["predictions"])},
    }
    for rid, answer in answers.items():
        row = records.loc[rid]
        assert row["topic"] == answer["topic"] and row["priority"] == answer["priority"]
        assert row["topic_scores"] == answer["topic_scores"]
        assert row["model_uri"] == "artifacts" and row["source"] == "api"
        assert row["latency_ms"] > 0
    assert records["text"].isna().all()  # serve.log_text=false: the hash, not the text
    assert records.loc["ticket-17", "text_sha256"] == text_hash(RUSSIAN)
    assert records.loc["ticket-17", "language"] == "ru"
    assert records.loc[f"{batch_id}:0", "language"] == "en"
    assert records.loc["ticket-17", "text_chars"] == len(RUSSIAN)
    assert records.loc["ticket-17", "oov_share"] == pytest.approx(0.5)  # 4 of its 8 words


def test_the_unknown_word_share_is_measured_against_the_served_vocabulary(export_workdir):
    import pandas as pd

    known = pd.read_parquet(export_workdir / "data/processed/train.parquet")["raw_text"][0]
    with TestClient(app_for(export_workdir)) as api:
        api.post("/predict/batch", json={"texts": [known, "zorblax quuxify wibbleton frobnar"]})
        api.app.state.prediction_log.flush()
    shares = read_records(str(export_workdir / "log"))["oov_share"].tolist()
    assert shares[0] < 0.2 and shares[1] == 1.0


def test_feedback_checks_labels_and_a_second_correction_replaces_the_first(export_workdir):
    with TestClient(app_for(export_workdir, "serve.log_text=true")) as api:
        rid = api.post("/predict", json={"text": RUSSIAN}).headers["X-Request-Id"]
        labels = api.post("/predict", json={"text": RUSSIAN}).json()
        topics = sorted(labels["topic_scores"])
        first = api.post("/feedback", json={"request_id": rid, "topic": topics[0]})
        assert first.status_code == 200, first.text
        assert first.json() == {"key": rid, "stored": "new"}
        again = api.post("/feedback", json={"request_id": rid, "topic": topics[1]})
        assert again.json()["stored"] == "replaced"
        bad = api.post("/feedback", json={"request_id": rid, "topic": "astrology"})
        assert bad.status_code == 422
        assert "'astrology' is not one of the model's" in bad.json()["detail"]
        assert all(t in bad.json()["detail"] for t in topics)
        assert api.post("/feedback", json={"topic": topics[0]}).status_code == 422
        both = {"request_id": rid, "text": RUSSIAN, "topic": topics[0]}
        assert api.post("/feedback", json=both).status_code == 422
        assert api.post("/feedback", json={"request_id": rid}).status_code == 422
        by_text = api.post("/feedback", json={"text": ENGLISH[0], "priority": labels["priority"]})
        assert by_text.json()["key"] == f"text:{text_hash(ENGLISH[0])}"
    with TestClient(app_for(export_workdir)) as api:  # a restarted server knows what it stored
        again = api.post("/feedback", json={"request_id": rid, "topic": topics[2]})
        assert again.json()["stored"] == "replaced"
    feedback = read_feedback(str(export_workdir / "log")).set_index("key")
    assert len(feedback) == 2 and feedback.loc[rid, "topic"] == topics[2]


def test_a_full_disk_drops_records_with_a_counter_and_never_fails_a_request(export_workdir):
    import ticketml.monitoring.store as store

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.MonkeyPatch.context() as disk, TestClient(app_for(export_workdir)) as api:
        disk.setattr(store.os, "write", full)  # every write of the log's file fails
        for _ in range(3):
            assert api.post("/predict", json={"text": RUSSIAN}).status_code == 200
        assert api.post("/predict/batch", json={"texts": ENGLISH}).status_code == 200
        api.app.state.prediction_log.flush()
        assert metric(api, "ticketml_prediction_log_dropped_total", reason="write_error") == 5
        assert metric(api, "ticketml_prediction_log_records_total") == 0
    assert read_records(str(export_workdir / "log")).empty


def test_a_full_queue_drops_and_counts_instead_of_waiting(export_workdir, monkeypatch):
    import threading

    from ticketml.monitoring.store import PredictionLog

    gate = threading.Event()
    plog = PredictionLog(str(export_workdir / "log"), queue_size=2)
    monkeypatch.setattr(plog, "_run", lambda: gate.wait())  # a writer that is stuck
    plog.thread = threading.Thread(target=plog._run, daemon=True)
    rows = [
        {"topic": "a", "priority": "b", "topic_scores": {"a": 1.0}, "priority_scores": {"b": 1.0}}
    ]
    accepted = [plog.submit(rows, ["x"], f"r{i}", None) for i in range(5)]
    assert accepted == [True, True, False, False, False]
    assert plog.counters()["dropped"]["queue_full"] == 3
    gate.set()


@pytest.mark.parametrize("rid", ["", "a b", "x" * 101, "../etc"])
def test_a_request_id_we_would_not_give_is_replaced_by_ours(export_workdir, rid):
    with TestClient(app_for(export_workdir)) as api:
        answer = api.post("/predict", json={"text": RUSSIAN}, headers={"X-Request-Id": rid})
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-Id"])


def test_batch_infer_logs_every_row_under_the_batch_id(export_workdir, capsys):
    import pandas as pd

    from tests.conftest import run_cli

    test = pd.read_parquet(export_workdir / "data/processed/test.parquet")
    test[["raw_text"]].rename(columns={"raw_text": "text"}).to_csv(export_workdir / "in.csv")
    args = ["--input_path=in.csv", "--output_path=out.csv", "infer.model_uri=artifacts"]
    assert run_cli("infer", *args, "infer.chunk_size=32", "serve.prediction_log=log") == 0
    batch = re.search(r"logged as ([0-9a-f]{32}):<row>", capsys.readouterr().out)[1]
    out = pd.read_csv(export_workdir / "out.csv")
    logged = read_records(str(export_workdir / "log")).set_index("request_id")
    assert sorted(logged.index) == sorted(f"{batch}:{i}" for i in range(len(test)))
    assert (logged["source"] == "infer").all()
    in_order = logged.loc[[f"{batch}:{i}" for i in range(len(test))]]
    assert in_order["topic"].tolist() == out["predicted_topic"].tolist()
    assert in_order["text_sha256"].tolist() == [text_hash(t) for t in test["raw_text"]]


def test_feedback_is_behind_the_api_key_like_predictions(export_workdir):
    with TestClient(app_for(export_workdir, "serve.api_key=s3cret")) as api:
        body = {"text": RUSSIAN, "topic": "billing"}
        assert api.post("/feedback", json=body).status_code == 401
        keyed = api.post("/feedback", json=body, headers={"Authorization": "Bearer s3cret"})
        assert keyed.status_code in (200, 422)  # past the key: the label is checked next
    assert read_feedback(str(export_workdir / "log")).shape[0] == int(keyed.status_code == 200)
