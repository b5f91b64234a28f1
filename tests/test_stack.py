"""The team stack's secrets and processes: passwords of any characters in its URLs, masked in
every message, private logs, and a stop that returns only once its servers have gone."""

import subprocess
import time
from urllib.parse import quote

import pytest
from sqlalchemy.engine import make_url

from ticketml.io import pid_alive
from ticketml.redact import mask
from ticketml.stack import database_url, private_log, stop_group

HARD = ["p@ss:w/rd", "a b", "100%/x?y#z", "plain-Token_123"]


@pytest.mark.parametrize("password", HARD)
def test_a_password_of_any_characters_survives_the_url(password):
    url = make_url(database_url(5432, "mlflow", password))
    assert url.password == password and url.host == "127.0.0.1" and url.database == "mlflow"
    assert url.port == 5432 and url.username == "ticketml"


@pytest.mark.parametrize("password", HARD)
def test_mask_hides_the_password_raw_or_encoded(password, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("TICKETML_DB_PASSWORD", raising=False)
    encoded = database_url(5432, "optuna", password)
    assert mask(f"cannot connect to {encoded}: refused") == (
        "cannot connect to postgresql+psycopg://ticketml:***@127.0.0.1:5432/optuna: refused"
    )
    # a raw URL whose password has "@" or ":" (no spaces): hidden up to the host
    if " " not in password:
        raw = f"postgresql://u:{password}@db:5432/x"
        assert mask(raw) == "postgresql://u:***@db:5432/x"
    # the stack's own password anywhere in a message, as is or encoded
    monkeypatch.setenv("TICKETML_DB_PASSWORD", password)
    said = f"auth failed for {password!s} / {quote(password, safe='')}"
    masked = mask(said)
    assert password not in masked and quote(password, safe="") not in masked


def test_server_logs_are_private(tmp_path):
    path = tmp_path / "mlflow.log"
    path.write_text("old\n")
    path.chmod(0o644)
    with private_log(path) as log:
        log.write("new\n")
    assert path.stat().st_mode & 0o777 == 0o600 and path.read_text() == "old\nnew\n"


def _group(script: str) -> int:
    proc = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    time.sleep(0.3)
    return proc.pid


def test_stop_waits_for_the_whole_process_group():
    """The MLflow server's job consumers are its children: stop returns when they are gone."""
    pgid = _group("sleep 300 & sleep 300 & wait")
    stop_group(pgid, timeout=10)
    assert not pid_alive(pgid, group=True)
    # one that ignores SIGTERM is killed after the timeout
    stubborn = _group("trap '' TERM; sleep 300 & wait; sleep 300")
    started = time.monotonic()
    stop_group(stubborn, timeout=1)
    deadline = time.monotonic() + 5
    while (
        pid_alive(stubborn, group=True) and time.monotonic() < deadline
    ):  # SIGKILL is delivered at once
        time.sleep(0.05)
    assert not pid_alive(stubborn, group=True) and time.monotonic() - started < 6
