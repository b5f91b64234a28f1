"""Schemathesis fuzzes every operation of the FastAPI app's OpenAPI schema (positive and negative
data): no 5xx, and every answer — errors included — matches the documented status codes,
content types and response schemas."""

import tempfile

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyfunc.core import TicketClassifier
from ticketml.monitoring.store import FeedbackStore, PredictionLog
from ticketml.serving.app import create_app

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


class DeferredModel:
    """The app (and so its schema) is built at import; the trained model arrives with a fixture.
    (schemathesis' `from_fixture` loader does not run under pytest 9.)"""

    target: TicketClassifier | None = None

    def predict(self, texts, min_confidence=None):
        return self.target.predict(texts, min_confidence=min_confidence)

    @property
    def label_maps(self):
        return self.target.label_maps


MODEL = DeferredModel()
LOG = tempfile.mkdtemp(prefix="ticketml-fuzz-log-")  # the prediction log and feedback, real files
schema = schemathesis.openapi.from_asgi(
    "/openapi.json",
    create_app(
        lambda: (MODEL, "fuzz"),
        background=False,
        prediction_log=PredictionLog(LOG),
        feedback=FeedbackStore(LOG),
    ),
)


@pytest.fixture(autouse=True, scope="module")
def _trained_model(exported_model):
    MODEL.target = TicketClassifier.from_dir(exported_model / "artifacts")


def fuzz(operation, examples: int = 100) -> list[int]:
    """Schemathesis cases for one operation, valid and invalid (hypothesis, derandomized: the
    same cases every run), each sent and checked; the status codes it got."""
    statuses: list[int] = []
    cases = st.one_of(*(operation.as_strategy(mode) for mode in schemathesis.GenerationMode))

    @given(case=cases)
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def send(case):
        statuses.append(case.call_and_validate(checks=CHECKS).status_code)

    send()
    return statuses


def test_fuzzed_requests_never_get_a_5xx_match_the_schema_and_reach_the_model():
    """Every operation of the schema fuzzed in one test (no order between tests to rely on):
    no 5xx, every answer as documented, the predictions both answered (200) and refused (a
    4xx), and the feedback reached (fuzzed corrections name no logged prediction: a 4xx)."""
    calls = {op.ok().label: fuzz(op.ok()) for op in schema.get_all_operations()}
    assert set(calls) >= {"POST /predict", "POST /predict/batch", "POST /feedback", "GET /ready"}
    assert sum(map(len, calls.values())) >= 100
    refused = {400, 413, 415, 422}
    for label in ("POST /predict", "POST /predict/batch"):
        statuses = set(calls[label])
        assert 200 in statuses and statuses & refused, (label, statuses)
    assert set(calls["POST /feedback"]) & refused
    assert set(calls["GET /ready"]) == {200}
