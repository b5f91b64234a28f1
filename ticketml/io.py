"""File I/O: tables in, atomic writes out (temp file in the same folder, then rename)."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from ticketml.errors import DataError

TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def table_format(path: str | Path, fmt: str = "auto") -> str:
    if fmt != "auto":
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path}: unknown table format (use .csv or .parquet)")
    return TABLE_SUFFIXES[suffix]


def check_readable_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a CSV or Parquet file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: not readable (permission denied)")
    return path


def read_table(path: str | Path, fmt: str = "auto") -> pd.DataFrame:
    """Read a CSV (all columns as strings) or Parquet file."""
    path = check_readable_file(path)
    kind = table_format(path, fmt)
    try:
        if kind == "csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        return pd.read_parquet(path)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: file is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read as {kind}: {exc}") from exc


def remove_stale_temps(path: Path) -> None:
    """Delete temp files of `path` left by processes that no longer run (killed mid-write with
    SIGKILL, where no clean-up code runs)."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def pid_alive(pid: int, group: bool = False) -> bool:
    """Whether process `pid` runs (`group`: any process of the process group `pid`)."""
    try:
        (os.killpg if group else os.kill)(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it onto `path` only if the block succeeds. The
    temp file is removed on any failure (the CLI turns SIGTERM into an exception for this); one
    left by a SIGKILLed process is removed by the next write to the same path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
        )
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from exc
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        tmp_path.unlink(missing_ok=True)


def write_table(df: pd.DataFrame, path: str | Path, fmt: str = "auto") -> Path:
    kind = table_format(path, fmt)
    with atomic_path(path) as tmp:
        if kind == "csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
    return Path(path)


def write_json(obj: object, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n")
    return Path(path)


def read_json(path: str | Path) -> object:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (run the stage that writes it first)")
    return json.loads(path.read_text())


def _json_default(obj: object) -> object:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def start_child(args: list[str], label: str, env: dict | None = None):
    """`python -m ticketml <args>` in a child process, each line of its output relayed to this
    console marked `[label]` (the baseline beside training, tune's workers); wait with
    `finish_child`."""
    import subprocess
    import sys
    import threading

    proc = subprocess.Popen(
        [sys.executable, "-m", "ticketml", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )

    def relay() -> None:
        for line in proc.stdout:
            print(f"[{label}] {line}", end="", flush=True)

    proc.relay = threading.Thread(target=relay, daemon=True)
    proc.relay.start()
    return proc


def finish_child(proc) -> int:
    """The child's exit code, once it has exited and all its lines are relayed."""
    code = proc.wait()
    proc.relay.join(timeout=10)
    return code
