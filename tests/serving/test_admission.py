"""Bounded work: past serve.max_inflight_texts a request is refused with 429 + Retry-After
instead of queueing (issue 25.3); one request is always admitted when nothing is in flight."""

import threading

from fastapi.testclient import TestClient

from pyfunc.core import TicketClassifier
from tests.conftest import sample
from ticketml.serving.app import create_app
from ticketml.serving.state import Admission


class Held:
    """The real classifier, held inside predict until released (a long batch being scored)."""

    def __init__(self, classifier):
        self.classifier, self.entered, self.go = classifier, threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.classifier, name)

    def predict(self, texts, min_confidence=None):
        self.entered.set()
        assert self.go.wait(30)
        return self.classifier.predict(texts, min_confidence=min_confidence)


def test_texts_past_the_cap_get_429_with_retry_after_and_nothing_is_lost(exported_model):
    held = Held(TicketClassifier.from_dir(exported_model / "artifacts", int8=None))
    app = create_app(lambda: (held, "artifacts"), background=False, max_inflight_texts=4)
    api = TestClient(app)
    batch = {"texts": ["VPN down", "refund please", "printer out of toner"]}
    first: dict = {}
    worker = threading.Thread(target=lambda: first.update(r=api.post("/predict/batch", json=batch)))
    worker.start()
    assert held.entered.wait(30)  # 3 texts in flight
    refused = api.post("/predict/batch", json={"texts": ["a", "b"]})  # 3 + 2 > 4
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert "serve.max_inflight_texts=4" in refused.json()["detail"]
    held.go.set()
    worker.join(30)
    assert first["r"].status_code == 200 and len(first["r"].json()["predictions"]) == 3
    assert app.state.admission.in_flight == 0  # released, also after the refusal
    assert api.post("/predict/batch", json={"texts": ["a", "b"]}).status_code == 200
    assert sample(api.get("/metrics").text, "ticketml_requests_total", status="429") == 1


def test_one_request_is_always_admitted_when_nothing_is_in_flight():
    gate = Admission(2)
    assert gate.admit(64)  # a full batch, alone: admitted whatever the cap
    assert not gate.admit(1)
    gate.release(64)
    assert gate.admit(1) and gate.admit(1) and not gate.admit(1)
    assert Admission(0).admit(10**6)  # 0 = no cap
