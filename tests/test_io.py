"""Atomic writes: a failed, terminated or killed step leaves no temp file and no partial output."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ticketml.io import atomic_path

REPO = Path(__file__).resolve().parent.parent


def hang_in_atomic_write(cfg, path: str) -> None:
    """A command that is stopped half-way through writing `path` (used below)."""
    with atomic_path(path) as tmp:
        tmp.write_text("half")
        time.sleep(120)


def _start_hanging_writer(target: Path, via_cli: bool) -> tuple[subprocess.Popen, Path]:
    code = (
        "import sys; from ticketml import cli; "
        "cli.COMMANDS['hang'] = cli.Command('tests.test_io:hang_in_atomic_write', ''); "
        f"sys.exit(cli.main(['hang', '--path={target}']))"
        if via_cli
        else f"from tests.test_io import hang_in_atomic_write; hang_in_atomic_write(None, '{target}')"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        temps = list(target.parent.glob(f".{target.name}.*.tmp"))
        if temps:
            return proc, temps[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the writer never created its temp file")


def test_a_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("previous")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_sigterm_during_a_write_exits_cleanly_without_temp_files(tmp_path):
    target = tmp_path / "out.txt"
    proc, tmp = _start_hanging_writer(target, via_cli=True)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert "ERROR: terminated" in err
    assert list(tmp_path.iterdir()) == []


def test_a_temp_file_of_a_killed_process_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "out.txt"
    proc, tmp = _start_hanging_writer(target, via_cli=False)
    proc.kill()  # SIGKILL: no clean-up code runs
    proc.wait(timeout=60)
    assert tmp.exists()
    with atomic_path(target) as new:
        new.write_text("complete")
    assert target.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
