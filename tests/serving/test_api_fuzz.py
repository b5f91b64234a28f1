"""Schemathesis fuzzes every operation of the FastAPI app's OpenAPI schema (positive and negative
data): no 5xx, and every answer — errors included — matches the documented status codes,
content types and response schemas."""

import tempfile

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from pyfunc.core import TicketClassifier
from ticketml.monitoring.store import FeedbackStore, PredictionLog
from ticketml.serving.app import create_app

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]
CALLS: list[tuple[str, int]] = []


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


@schema.parametrize()
@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_fuzzed_requests_never_get_a_5xx_and_match_the_schema(case):
    response = case.call_and_validate(checks=CHECKS)
    CALLS.append((case.operation.label, response.status_code))


def test_the_fuzzer_really_reached_the_model():
    """Runs after the fuzz test in this module: it must have sent both valid and invalid requests."""
    assert len(CALLS) >= 100, len(CALLS)
    statuses = {status for _, status in CALLS}
    assert 200 in statuses and statuses & {400, 413, 415, 422}, statuses
    labels = {label for label, _ in CALLS}
    assert labels >= {"POST /predict", "POST /predict/batch", "POST /feedback", "GET /ready"}
