"""pyfunc.scoring: what MLflow's scoring server cannot parse is its 400, not a 500 (#25, item 6)."""

import json

import pytest
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import scoring_server

from pyfunc.scoring import guard_scoring_server

DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE_NUMBER = b'{"inputs": {"text": [' + b"9" * 5000 + b"]}}"


@pytest.fixture
def server(monkeypatch):
    # the server module as MLflow ships it (a model loaded earlier in this process may have
    # guarded it already), put back as it was after the test
    decode = scoring_server._decode_json_input
    monkeypatch.setattr(
        scoring_server, "_decode_json_input", getattr(decode, "__wrapped__", decode)
    )
    return scoring_server


def test_unparsable_bodies_escape_mlflows_decoder_until_the_model_guards_it(server):
    with pytest.raises(RecursionError):
        server._decode_json_input(DEEP)
    with pytest.raises(ValueError, match="4300 digits"):
        server._decode_json_input(HUGE_NUMBER)
    assert guard_scoring_server() is True
    assert guard_scoring_server() is False  # wrapped once
    for body, message in [(DEEP, "nested too deeply"), (HUGE_NUMBER, "4300 digits")]:
        with pytest.raises(MlflowException, match=message) as caught:
            server._decode_json_input(body)
        assert caught.value.get_http_status_code() == 400
        assert len(caught.value.message) < 400  # the body is not echoed back
    # what MLflow already handled is unchanged
    ok = {"inputs": {"text": ["VPN is down"]}}
    assert server._decode_json_input(json.dumps(ok)) == ok
    with pytest.raises(MlflowException, match="valid JSON") as caught:
        server._decode_json_input(b'{"inputs": ')
    assert caught.value.get_http_status_code() == 400
