"""What is serving is visible (/ready, response headers, /metrics) and follows a moved @champion."""

import threading
from pathlib import Path

import mlflow
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from tests.conftest import run_cli, sample
from ticketml.config import load_config
from ticketml.predictor import ModelSource
from ticketml.serving.app import create_app


def _two_versions(workdir):
    assert run_cli("register") == 0 and run_cli("register") == 0
    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    client = MlflowClient()
    client.set_registered_model_alias("ticketml", "champion", "1")
    return client


@pytest.mark.slow  # end to end: a real server while @champion moves, over 10 s on 2 cores
def test_the_champion_is_named_and_followed_without_a_failed_request(export_workdir):
    client = _two_versions(export_workdir)
    cfg = load_config([f"mlflow.tracking_uri=sqlite:///{export_workdir}/mlflow.db"])
    source = ModelSource(cfg, "models:/ticketml@champion")
    app = create_app(source, background=False, api_key="k", metrics_public=True)
    api = TestClient(app, headers={"Authorization": "Bearer k"})
    ready = api.get("/ready").json()
    v1_run = client.get_model_version("ticketml", "1").run_id
    assert ready["model_version"] == "1" and ready["model_name"] == "ticketml"
    assert ready["run_id"] == v1_run
    answer = api.post("/predict", json={"text": "VPN is down"})
    assert answer.status_code == 200
    assert answer.headers["X-Model-Version"] == "1" and answer.headers["X-Model-Run-Id"] == v1_run
    assert api.post("/reload").json()["result"] == "already serving version 1"

    client.set_registered_model_alias("ticketml", "champion", "2")
    assert api.post("/predict", json={"text": "x"}).headers["X-Model-Version"] == "1"  # not yet
    assert api.post("/reload").json()["result"] == "now serving version 2"
    batch = api.post("/predict/batch", json={"texts": ["a b", "c d"]})
    assert batch.headers["X-Model-Version"] == "2" and len(batch.json()["predictions"]) == 2
    assert api.get("/ready").json()["model_version"] == "2"

    # a version that cannot load: the old one keeps serving and /ready says why
    assert run_cli("register") == 0
    source_uri = client.get_model_version("ticketml", "3").source
    location = mlflow.get_logged_model(source_uri.split("/")[-1]).artifact_location
    for graph in Path(location.removeprefix("file://")).rglob("*.onnx"):
        graph.write_bytes(b"not an onnx graph")
    client.set_registered_model_alias("ticketml", "champion", "3")
    assert "version 3 failed to load" in api.post("/reload").json()["result"]
    ready = api.get("/ready").json()
    assert ready["model_version"] == "2" and "version 3 failed" in ready["reload_error"]
    assert api.post("/predict", json={"text": "x"}).headers["X-Model-Version"] == "2"

    metrics = TestClient(app).get("/metrics")  # public: no key needed
    assert metrics.status_code == 200
    text = metrics.text
    assert sample(text, "ticketml_model_info", name="ticketml", version="2") == 1
    assert sample(text, "ticketml_model_info", version="1") is None  # only the serving one
    served = {"endpoint": "/predict", "status": "200"}
    assert sample(text, "ticketml_requests_total", **served, model_version="1") == 2
    assert sample(text, "ticketml_requests_total", **served, model_version="2") == 1
    assert sample(text, "ticketml_batch_size_bucket", endpoint="/predict/batch", le="2.0") == 1
    assert sample(text, "ticketml_model_reloads_total", result="swapped") == 1
    assert sample(text, "ticketml_model_reloads_total", result="failed") == 1
    assert sample(text, "ticketml_request_seconds_count", endpoint="/predict") == 3
    assert "# HELP ticketml_predictions_total labels given" in text
    # each text's topic counted once: 3 single texts and a batch of 2
    assert sample(text, "ticketml_predictions_total", task="topic") == 5


def test_metrics_need_the_api_key_unless_public(export_workdir):
    app = create_app(lambda: (None, "fixed"), background=False, api_key="k")
    assert TestClient(app).get("/metrics").status_code == 401
    api = TestClient(app, headers={"Authorization": "Bearer k"})
    assert api.get("/metrics").status_code == 200
    assert api.post("/reload").json()["result"] == "the model source is fixed: nothing to follow"
    bad = TestClient(app).post("/predict", json={"text": "x"})
    assert bad.status_code == 401
    metrics = api.get("/metrics").text
    assert sample(metrics, "ticketml_requests_total", endpoint="/predict", status="401") == 1


def test_a_non_ascii_key_is_a_401_or_a_match_never_a_500(export_workdir):
    app = create_app(lambda: (None, "fixed"), background=False, api_key="k")
    wrong = {"Authorization": "Bearer é".encode()}  # UTF-8 bytes on the wire
    response = TestClient(app).get("/metrics", headers=wrong)
    assert response.status_code == 401 and "API key" in response.json()["detail"]
    keyed = create_app(lambda: (None, "fixed"), background=False, api_key="clé-ß")
    assert (
        TestClient(keyed).get("/metrics", headers={"Authorization": "Bearer k"}).status_code == 401
    )
    right = {"Authorization": "Bearer clé-ß".encode()}
    assert TestClient(keyed).get("/metrics", headers=right).status_code == 200


@pytest.mark.slow
def test_flipping_the_champion_under_load_fails_no_request(export_workdir):
    from tools.flip import flip_under_load

    assert run_cli("register") == 0 and run_cli("register") == 0
    result = flip_under_load(str(export_workdir), clients=8, seconds=12)
    assert result["requests"] > 50 and result["failed"] == 0
    assert result["alias_to_swap_s"] is not None and result["alias_to_swap_s"] < 6
    assert result["sent_after_swap"] > 0 and result["sent_after_swap_not_new"] == 0
    assert all(n > 0 for n in result["answered_by"].values())


def _version_dir(client, version: str) -> Path:
    source = client.get_model_version("ticketml", version).source
    return Path(
        mlflow.get_logged_model(source.split("/")[-1]).artifact_location.removeprefix("file://")
    )


def test_with_the_default_uri_a_bad_version_never_swaps_in_artifacts(export_workdir):
    """Issue 25.1/25.2: with the default serve.model_uri, a champion that does not load (a
    truncated graph) or loads but answers wrongly (a label map one topic short) leaves the
    serving version in place, with no failed request while clients keep asking; artifacts/ is
    only the fall-back where the registry has none."""
    import json

    client = _two_versions(export_workdir)
    assert run_cli("register") == 0
    cfg = load_config([f"mlflow.tracking_uri=sqlite:///{export_workdir}/mlflow.db"])
    source = ModelSource(cfg)  # serve.model_uri null -> infer.model_uri, not explicit
    assert not source.explicit and source.uri == "models:/ticketml@champion"
    api = TestClient(create_app(source, background=False))
    assert api.get("/ready").json()["model_version"] == "1"
    for graph in _version_dir(client, "2").rglob("*.onnx"):
        graph.write_bytes(graph.read_bytes()[:1000])  # truncated
    for maps in _version_dir(client, "3").rglob("label_maps.json"):
        labels = json.loads(maps.read_text())
        maps.write_text(json.dumps({**labels, "topic": labels["topic"][:-1]}))
    # under load: 4 clients ask all along; every answer is 200 from version 1
    wrong, sent, stop = [], [0], threading.Event()

    def ask() -> None:
        while not stop.is_set():
            r = api.post("/predict", json={"text": "Refund the double charge, please"})
            sent[0] += 1
            if r.status_code != 200 or r.headers.get("X-Model-Version") != "1":
                wrong.append((r.status_code, r.headers.get("X-Model-Version")))

    clients = [threading.Thread(target=ask) for _ in range(4)]
    for thread in clients:
        thread.start()
    for version, why in (("2", "failed to load"), ("3", "cannot answer its own examples")):
        client.set_registered_model_alias("ticketml", "champion", version)
        result = api.post("/reload").json()["result"]
        assert f"version {version} failed to load" in result and why in result
        ready = api.get("/ready").json()
        assert ready["model_version"] == "1" and ready["model_name"] == "ticketml"
        answer = api.post("/predict", json={"text": "VPN is down"})
        assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "1"
        again = api.post("/reload").json()["result"]  # the same bad version: not loaded again
        assert again.endswith("(not retried until the alias moves)") and why in again
    stop.set()
    for thread in clients:
        thread.join(30)
    assert sent[0] > 20 and wrong == [], (sent[0], wrong[:5])


def test_a_server_started_before_any_champion_serves_the_first_one_promoted(export_workdir):
    """A fresh stack: the API is up before the registry has @champion. /ready says why it is not
    ready, and the reload loop (serve.reload_interval_s) picks up the first promotion."""
    import time

    cfg = load_config([f"mlflow.tracking_uri=sqlite:///{export_workdir}/mlflow.db"])
    source = ModelSource(cfg, "models:/ticketml@champion")
    app = create_app(source, background=False, reload_interval_s=0.2)
    with TestClient(app) as api:  # its shutdown ends the reload loop (no thread left behind)
        follow_first_promotion(api, export_workdir)
    state = app.state.model
    assert state.stopped.is_set()
    time.sleep(0.5)  # the loop has seen the stop: nothing polls the registry any more
    assert not [t for t in threading.enumerate() if getattr(t, "_target", None) == state.follow]


def follow_first_promotion(api, export_workdir):
    import time

    ready = api.get("/ready")
    assert ready.status_code == 503 and "ticketml" in ready.json()["reason"]
    assert api.post("/predict", json={"text": "VPN is down"}).status_code == 503
    assert run_cli("register") == 0
    mlflow.set_tracking_uri(f"sqlite:///{export_workdir}/mlflow.db")
    MlflowClient().set_registered_model_alias("ticketml", "champion", "1")
    deadline = time.monotonic() + 60
    while (ready := api.get("/ready")).status_code != 200:
        assert time.monotonic() < deadline, ready.json()
        time.sleep(0.2)
    assert ready.json()["model_version"] == "1"
    answer = api.post("/predict", json={"text": "VPN is down"})
    assert answer.status_code == 200 and answer.headers["X-Model-Version"] == "1"
