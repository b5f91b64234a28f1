"""The team stack without Docker: PostgreSQL (the server binaries of the `pgserver` wheel), an MLflow
tracking server on it with proxied artifacts, and `ticketml serve`.

    ticketml stack start      # PostgreSQL on 127.0.0.1:5433, MLflow on :8080, the API on :8000
    ticketml stack status
    ticketml stack stop

Everything lives in `stack.dir` (default .stack/): the database, the MLflow artifacts, logs and
pids. The database password comes from $TICKETML_DB_PASSWORD or from `.env`; on the first start
one is generated into `.env` (mode 0600, git-ignored). URLs shown anywhere have it masked.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from omegaconf import DictConfig

from ticketml.errors import ConfigError, TicketMLError
from ticketml.io import pid_alive
from ticketml.redact import env_file_value, mask

DB_USER = "ticketml"
PREDICTION_LOG_ENV = "TICKETML_PREDICTION_LOG"  # serve.prediction_log's default when set
DATABASES = ("mlflow", "optuna", "ticketml")  # tracking, studies, the prediction log


def db_password(create: bool = False) -> str:
    """$TICKETML_DB_PASSWORD, else `.env`'s; with create, a new one written to `.env` (0600)."""
    value = os.environ.get("TICKETML_DB_PASSWORD") or env_file_value("TICKETML_DB_PASSWORD")
    if value:
        return value
    if not create:
        raise ConfigError(
            "no database password: set TICKETML_DB_PASSWORD or run `ticketml stack start`"
        )
    value = secrets.token_urlsafe(18)
    env = Path(".env")
    lines = env.read_text().splitlines() if env.is_file() else []
    lines.append(f"TICKETML_DB_PASSWORD={value}")
    env.write_text("\n".join(lines) + "\n")
    env.chmod(0o600)
    return value


def database_url(port: int, database: str, password: str, host: str = "127.0.0.1") -> str:
    """The SQLAlchemy URL, the password URL-encoded (`@ : / %` and spaces stay its own)."""
    return f"postgresql+psycopg://{DB_USER}:{quote(password, safe='')}@{host}:{port}/{database}"


class LocalPostgres:
    """A PostgreSQL server of our own in `data_dir`, listening on 127.0.0.1:`port` only, with
    password authentication. As root it runs as the unprivileged user `pgserver` (PostgreSQL
    refuses root), as pgserver itself does."""

    def __init__(self, data_dir: Path, port: int):
        self.data_dir = Path(data_dir).resolve()
        self.port = int(port)
        self.user = None
        if os.name == "posix" and os.geteuid() == 0:
            from pgserver.utils import ensure_user_exists

            ensure_user_exists("pgserver")
            self.user = "pgserver"

    @property
    def bin(self) -> Path:
        try:
            from pgserver._commands import POSTGRES_BIN_PATH
        except ImportError as exc:
            raise TicketMLError(
                "the team stack needs the `stack` extra: pip install -e '.[stack]' (pgserver, psycopg)"
            ) from exc
        return POSTGRES_BIN_PATH

    def _run(self, program: str, *args: str, timeout: float = 60) -> str:
        """Output through a file, not a pipe: the server pg_ctl starts would inherit a pipe and
        keep it open (the call would never return)."""
        import tempfile

        with tempfile.TemporaryFile("w+") as out:
            proc = subprocess.run(
                [str(self.bin / program), *args],
                user=self.user,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                cwd="/",
            )
            out.seek(0)
            text = out.read()
        if proc.returncode:
            raise TicketMLError(f"{program} failed: {text.strip()[-500:]}")
        return text

    def _owned(self, path: Path) -> None:
        if self.user:
            import shutil

            from pgserver.utils import ensure_prefix_permissions

            path.mkdir(parents=True, exist_ok=True)
            ensure_prefix_permissions(path)
            shutil.chown(path, self.user)

    def init(self, password: str) -> None:
        """initdb (once): scram-sha-256 passwords over TCP, the databases MLflow and Optuna use."""
        if (self.data_dir / "PG_VERSION").is_file():
            return
        self._owned(self.data_dir)
        pwfile = self.data_dir.parent / f".pw-{os.getpid()}"
        # created 0600: never readable by others, not even for a moment
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        if self.user:
            import shutil

            shutil.chown(pwfile, self.user)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                DB_USER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=peer",
                "-E",
                "UTF8",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        self.start()
        self.create_databases(password)

    def create_databases(self, password: str) -> None:
        """DATABASES that are missing (a stack made by an older version lacks the newer ones)."""
        listed = self.psql("SELECT datname FROM pg_database", password)
        have = {line.strip() for line in listed.splitlines()}
        for name in DATABASES:
            if name not in have:
                self.psql(f"CREATE DATABASE {name}", password)

    def psql(self, sql: str, password: str, database: str = "postgres") -> str:
        env = {**os.environ, "PGPASSWORD": password}
        proc = subprocess.run(
            [
                str(self.bin / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                DB_USER,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        if proc.returncode:
            raise TicketMLError(f"psql failed: {proc.stderr.strip()[-300:]}")
        return proc.stdout

    def start(self) -> None:
        if self.running():
            return
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-w",
            "-l",
            str(self.data_dir / "server.log"),
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.data_dir}",
            "start",
        )

    def stop(self) -> None:
        if self.running():
            self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-m", "fast", "stop")

    def restart(self) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-w",
            "-m",
            "fast",
            "restart",
            "-l",
            str(self.data_dir / "server.log"),
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.data_dir}",
        )

    def running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").is_file():
            return False
        proc = subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "status"],
            user=self.user,
            capture_output=True,
            text=True,
            cwd="/",
        )
        return proc.returncode == 0


def _pids(folder: Path) -> dict[str, int]:
    path = folder / "pids.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _wait_http(url: str, timeout: float = 120) -> bool:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            time.sleep(0.5)
    return False


def start_stack(cfg: DictConfig) -> dict[str, str]:
    s = cfg.stack
    folder = Path(s.dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    password = db_password(create=True)
    db = LocalPostgres(folder / "postgres", s.db_port)
    db.init(password)
    started_here = db.running()  # already up: a stop is `stack stop`'s, not a failed start's
    db.start()
    db.create_databases(password)
    pids = {k: v for k, v in _pids(folder).items() if pid_alive(v)}
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": database_url(s.db_port, "mlflow", password)}
    tracking = f"http://127.0.0.1:{s.mlflow_port}"
    if "mlflow" not in pids:
        log = private_log(folder / "mlflow.log")
        pids["mlflow"] = subprocess.Popen(
            [
                str(bin_dir / "mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(s.mlflow_port),
                "--workers",
                "1",
                "--artifacts-destination",
                str(folder / "artifacts"),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ).pid
        if not _wait_http(f"{tracking}/health"):
            stop_group(pids.pop("mlflow"))  # nothing half-started stays behind
            if not started_here:
                db.stop()
            raise TicketMLError(f"the MLflow server did not start: see {folder / 'mlflow.log'}")
    if s.serve and "serve" not in pids:
        log = private_log(folder / "serve.log")
        pids["serve"] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ticketml",
                "serve",
                f"--port={cfg.serve.port}",
                f"mlflow.tracking_uri={tracking}",
                "serve.reload_interval_s=30",
            ],
            # the log's URL holds the password: in the environment, not on a command line
            env={**os.environ, PREDICTION_LOG_ENV: database_url(s.db_port, "ticketml", password)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ).pid
    (folder / "pids.json").write_text(json.dumps(pids))
    return {
        "postgres": mask(database_url(s.db_port, "mlflow", password)),
        "mlflow": tracking,
        "tune.storage": mask(database_url(s.db_port, "optuna", password)),
        "serve": f"http://127.0.0.1:{cfg.serve.port}" if s.serve else "off",
        "predictions": mask(database_url(s.db_port, "ticketml", password)),
    }


def private_log(path: Path):
    """A log file only its owner reads (0600): a server's log may quote a connection string."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.chmod(path, 0o600)  # an older, more open file too
    return os.fdopen(fd, "a")  # the server keeps writing to it


def stop_group(pgid: int, timeout: float = 30) -> None:
    """SIGTERM a server's whole process group (the MLflow server's job consumers included) and
    wait until every process of it has gone; SIGKILL what is left after `timeout`."""
    if not pid_alive(pgid, group=True):
        return

    def wait(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while pid_alive(pgid, group=True) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(-pgid, os.WNOHANG)  # our own children: reap them (no zombies)
            time.sleep(0.1)

    os.killpg(pgid, signal.SIGTERM)
    wait(timeout)
    if pid_alive(pgid, group=True):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        wait(10)


def stop_stack(cfg: DictConfig) -> None:
    """Stop the servers, waiting until they and their children are gone, then PostgreSQL."""
    folder = Path(cfg.stack.dir).resolve()
    for pid in _pids(folder).values():
        stop_group(pid)
    (folder / "pids.json").unlink(missing_ok=True)
    LocalPostgres(folder / "postgres", cfg.stack.db_port).stop()


def run_stack(cfg: DictConfig, action: str) -> None:
    """`ticketml stack start|stop|status|env`."""
    if action == "start":
        for name, where in start_stack(cfg).items():
            print(f"{name:<13} {where}")
        print(
            "then: eval $(ticketml stack env)   # MLFLOW_TRACKING_URI, TICKETML_TUNE_STORAGE "
            "(the study's database, the default tune.storage when set) and "
            f"{PREDICTION_LOG_ENV} (serve.prediction_log: what monitor reads)"
        )
    elif action == "stop":
        stop_stack(cfg)
        print("stack stopped")
    elif action == "status":
        folder = Path(cfg.stack.dir).resolve()
        db = LocalPostgres(folder / "postgres", cfg.stack.db_port)
        print(f"postgres      {'running' if db.running() else 'stopped'} ({folder / 'postgres'})")
        for name, pid in _pids(folder).items():
            print(f"{name:<13} {'running' if pid_alive(pid) else 'stopped'} (pid {pid})")
    elif action == "env":  # for `eval $(ticketml stack env)`: the password stays out of history
        password = db_password()
        print(f"export MLFLOW_TRACKING_URI=http://127.0.0.1:{cfg.stack.mlflow_port}")
        print(
            f"export TICKETML_TUNE_STORAGE='{database_url(cfg.stack.db_port, 'optuna', password)}'"
        )
        log_url = database_url(cfg.stack.db_port, "ticketml", password)
        print(f"export {PREDICTION_LOG_ENV}='{log_url}'")
    else:
        raise ConfigError(f"stack: unknown action {action!r} (start, stop, status, env)")
