"""MLflow setup (local SQLite store by default, fallback when a server is down), runs and tags."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from omegaconf import DictConfig

from ticketml.config import flatten

log = logging.getLogger(__name__)
LOCAL_URI = "sqlite:///mlflow.db"


def absolute_sqlite(uri: str) -> str:
    """`sqlite:///mlflow.db` → `sqlite:////abs/cwd/mlflow.db` (child processes and MLflow's
    per-URI store cache must not depend on the working directory)."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


def resolve_uri(cfg: DictConfig) -> str:
    """Explicit `mlflow.tracking_uri` > $MLFLOW_TRACKING_URI > a SQLite store in the cwd."""
    return absolute_sqlite(
        cfg.mlflow.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or LOCAL_URI
    )


def _check_server(uri: str, timeout: float) -> None:
    """Raise if an http(s) tracking server does not answer /health quickly."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as resp:
            if resp.status >= 400:
                raise ConnectionError(f"{uri} answered HTTP {resp.status}")
    except (urllib.error.URLError, OSError) as exc:
        raise ConnectionError(
            f"tracking server {uri} is unreachable ({getattr(exc, 'reason', exc)})"
        ) from exc


def _set_experiment(cfg: DictConfig) -> None:
    import mlflow

    # Under `mlflow run`, the project's run fixes the experiment (--experiment-name).
    if os.environ.get("MLFLOW_RUN_ID") and os.environ.get("MLFLOW_EXPERIMENT_ID"):
        mlflow.set_experiment(experiment_id=os.environ["MLFLOW_EXPERIMENT_ID"])
    else:
        experiment = mlflow.set_experiment(cfg.mlflow.experiment_name)
        # MLflow 3.17: when another process creates the experiment in the same moment (two tune
        # workers on a new store), set_experiment returns it without making it the active one,
        # and the runs would land in experiment 0: make it active by its id.
        mlflow.set_experiment(experiment_id=experiment.experiment_id)


# Where a local SQLite store keeps absolute paths of its own folder: MLflow resolves a local
# artifact root to an absolute path when it records it (mlflow#3144: no relative form).
PATH_COLUMNS = {
    "experiments": ("artifact_location",),
    "runs": ("artifact_uri",),
    "logged_models": ("artifact_location",),
    "model_versions": ("source", "storage_location"),
    "datasets": ("dataset_source",),
    "trace_tags": ("value",),
}


def moved_roots(rows, here: Path) -> set[str]:
    """The folders a store at `here` was moved from: an experiment recorded at
    <old>/mlruns/<id> whose artifacts are now at here/mlruns/<id> and no longer at the old
    place (a store pointed at artifacts elsewhere on purpose is left alone)."""
    roots = set()
    for experiment_id, location in rows:
        path = Path(str(location or "").removeprefix("file://"))
        old = path.parent.parent
        if (
            path.is_absolute()
            and path.name == str(experiment_id)
            and path.parent.name == "mlruns"
            and old != here
            and (here / "mlruns" / path.name).is_dir()
            and not path.is_dir()
        ):
            roots.add(str(old))
    return roots


def follow_moved_store(uri: str) -> int:
    """A local SQLite store moved with its project (mlflow.db and mlruns/ side by side, as
    `ticketml` makes them): every path it recorded under the old folder is repointed to the new
    one, so runs, logged models and registered versions load from where they are now. Returns
    the rows changed (0: the store has not moved, or is not a local SQLite file)."""
    import sqlite3

    prefix = "sqlite:///"
    db = Path(uri[len(prefix) :]) if uri.startswith(prefix) else None
    if db is None or not db.is_file():
        return 0
    here = db.resolve().parent
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as con:
        try:
            experiments = con.execute("SELECT experiment_id, artifact_location FROM experiments")
            roots = moved_roots(experiments.fetchall(), here)
        except sqlite3.Error:  # not an MLflow store (yet)
            return 0
        changed = 0
        try:
            with con:  # one transaction: every path or none
                present = {}  # the path columns this store's schema has, read once
                for table, columns in PATH_COLUMNS.items():
                    have = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
                    present[table] = [c for c in columns if c in have]
                for old in sorted(roots):
                    for table, columns in present.items():
                        for column in columns:
                            changed += con.execute(
                                f"UPDATE {table} SET {column} = REPLACE({column}, ?, ?) "
                                f"WHERE instr({column}, ?) > 0",
                                (old + "/", f"{here}/", old + "/"),
                            ).rowcount
        except sqlite3.Error as exc:  # locked, read-only: the store stays as it was
            print(
                f"WARNING: tracking store {db} moved from {', '.join(sorted(roots))}, but its "
                f"paths could not be repointed ({exc}); its versions will not load from here",
                flush=True,
            )
            return 0
    if changed:
        print(
            f"tracking store: moved from {', '.join(sorted(roots))} to {here}; {changed} recorded "
            "paths repointed",
            flush=True,
        )
    return changed


def reach(cfg: DictConfig) -> str:
    """The tracking URI with its server checked (`mlflow.connect_timeout_s`) and MLflow's HTTP
    retries capped: a server that is down is a ConnectionError in seconds, not minutes in
    MLflow's retry loop (every client of the store goes through here: runs, the registry,
    serving's reloads, infer)."""
    uri = resolve_uri(cfg)
    follow_moved_store(uri)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    _check_server(uri, float(cfg.mlflow.connect_timeout_s))
    return uri


def setup_mlflow(cfg: DictConfig, registry: bool = False) -> str:
    """Point MLflow at the configured store and experiment; fall back to the local store, except
    for the registry (`registry=True`: register, promote): a version registered in a stray local
    store would look like a success to a team's CI, so an unreachable store is an error there."""
    import mlflow

    from ticketml.redact import mask

    uri = resolve_uri(cfg)
    try:
        uri = reach(cfg)
        mlflow.set_tracking_uri(uri)
        _set_experiment(cfg)
    except Exception as exc:  # noqa: BLE001 - any failure here must not stop the pipeline
        if registry:
            from ticketml.errors import TicketMLError

            raise TicketMLError(
                f"cannot reach the model registry at {mask(uri)}: {mask(str(exc))}; nothing was "
                "registered or promoted (the registry never falls back to a local store)"
            ) from exc
        print(f"WARNING: MLflow setup failed: {mask(str(exc))}", flush=True)
        print("WARNING: Continuing without MLflow tracking", flush=True)
        print(f"WARNING: logging to the local store {LOCAL_URI} instead", flush=True)
        uri = absolute_sqlite(LOCAL_URI)
        mlflow.set_tracking_uri(uri)
        _set_experiment(cfg)
    os.environ["MLFLOW_TRACKING_URI"] = uri  # child processes (mlflow models serve, spark) agree
    return uri


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


@contextlib.contextmanager
def start_run(
    cfg: DictConfig,
    run_name: str,
    nested: bool = False,
    log_config: bool = True,
    registry: bool = False,
) -> Iterator[object]:
    """An MLflow run tagged with the git commit and data version, with the resolved config as params."""
    import mlflow

    from ticketml.contract import data_version

    if not nested:
        setup_mlflow(cfg, registry=registry)
    tags = {
        "git_commit": git_commit(),
        "data_version": data_version(cfg),
        "ticketml.stage": run_name,
        "dataset": cfg.data.name,
    }
    with contextlib.ExitStack() as stack:
        # Under `mlflow run`, each stage is a child of the project's run instead of reusing it.
        project_run = os.environ.get("MLFLOW_RUN_ID")
        if project_run and mlflow.active_run() is None:
            del os.environ["MLFLOW_RUN_ID"]
            stack.callback(os.environ.__setitem__, "MLFLOW_RUN_ID", project_run)
            stack.enter_context(mlflow.start_run(run_id=project_run))
            nested = True
        run = mlflow.start_run(run_name=run_name, nested=nested, tags=tags)
        try:
            if log_config:
                log_safely(log_params, flatten(cfg))
            yield run
        except BaseException:
            _end_run("FAILED")
            raise
        _end_run("FINISHED")


def _end_run(status: str) -> None:
    """Always end the run locally (mlflow pops it before contacting the store), even when the
    tracking store is gone."""
    import mlflow

    try:
        mlflow.end_run(status)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not mark the MLflow run %s: %s", status, exc)


_TRACKING_LOST: list[str] = []


def log_safely(fn, *args, **kwargs) -> bool:
    """Call an MLflow logging function; if the tracking store fails mid-run, warn once and carry on
    (every result is also written under artifacts/, checkpoints/ and plots/)."""
    if _TRACKING_LOST:
        return False
    try:
        fn(*args, **kwargs)
        return True
    except Exception as exc:  # noqa: BLE001 - a lost tracking server must not lose the run
        _TRACKING_LOST.append(f"{type(exc).__name__}: {exc}")
        print(
            f"WARNING: MLflow logging failed mid-run: {type(exc).__name__}: {str(exc)[:300]}",
            flush=True,
        )
        print(
            "WARNING: Continuing without MLflow tracking; results are kept in artifacts/, checkpoints/ "
            "and plots/",
            flush=True,
        )
        return False


def log_params(params: dict[str, object]) -> None:
    import mlflow

    from ticketml.redact import mask

    items = [(k, mask(str(v))[:500]) for k, v in params.items()]  # no credentials in params
    for i in range(0, len(items), 100):
        mlflow.log_params(dict(items[i : i + 100]))


class StageLog:
    """What a stage logs to its MLflow run. Every call goes through log_safely: a tracking
    server that dies mid-stage costs one warning, never the stage's results (they are files)."""

    def __init__(self, run):
        self.run = run  # None on a rank other than zero: every call does nothing

    @property
    def run_id(self) -> str | None:
        return self.run.info.run_id if self.run is not None else None

    def metrics(
        self, values: dict[str, float], step: int | None = None, model_id=None, dataset=None
    ) -> None:
        """On the run; with `model_id` (and `dataset`) also on that LoggedModel, linked to the
        dataset they were measured on."""
        import mlflow

        if self.run is not None:
            values = {k: float(v) for k, v in values.items()}
            log_safely(mlflow.log_metrics, values, step=step, model_id=model_id, dataset=dataset)

    def inputs(self, cfg: DictConfig, splits: tuple[str, ...], frames: dict | None = None) -> dict:
        """The processed splits named as the run's dataset inputs (ticketml.model_card.log_lineage;
        `frames`: those the stage has already read); returns {split: mlflow dataset} logged."""
        from ticketml.model_card import log_lineage

        logged: dict = {}
        if self.run is not None:
            log_safely(lambda: logged.update(log_lineage(cfg, splits, frames)))
        return logged

    def artifact(self, path: str | Path, folder: str | None = None) -> None:
        """A file or a folder, when it exists."""
        import mlflow

        path = Path(path)
        if self.run is None:
            return
        if path.is_dir():
            log_safely(mlflow.log_artifacts, str(path), artifact_path=folder)
        elif path.is_file():
            log_safely(mlflow.log_artifact, str(path), artifact_path=folder)

    def text(self, text: str, name: str) -> None:
        import mlflow

        if self.run is not None:
            log_safely(mlflow.log_text, text, name)

    def tags(self, **tags: object) -> None:
        import mlflow

        if self.run is not None:
            log_safely(mlflow.set_tags, {k: str(v) for k, v in tags.items()})

    def params(self, params: dict[str, object]) -> None:
        if self.run is not None:
            log_safely(log_params, params)


@contextlib.contextmanager
def stage_run(
    cfg: DictConfig,
    name: str,
    nested: bool = False,
    log_config: bool = True,
    registry: bool = False,
) -> Iterator[StageLog]:
    """The one way a stage logs: its own run (tags, config as params), a StageLog to log with.
    Under DDP only rank zero has a run; the other ranks get a StageLog that logs nothing."""
    from ticketml.ranks import is_rank_zero

    if not is_rank_zero():
        yield StageLog(None)
        return
    with start_run(cfg, name, nested=nested, log_config=log_config, registry=registry) as run:
        yield StageLog(run)
