"""The Optuna study behind `tune`, shared by any number of workers (processes or machines) through
one database (`tune.storage`: any SQLAlchemy URL; SQLite by default, PostgreSQL for a team).

- Storage calls retry while the database is briefly away (a PostgreSQL restart): nothing lost.
- A heartbeat marks the trials of a worker that died as failed; the study goes on.
- The worker that creates the study enqueues the default trial; the others load it.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time

import optuna
from omegaconf import DictConfig, OmegaConf

from ticketml.errors import ConfigError
from ticketml.redact import mask

log = logging.getLogger(__name__)
WORKER = f"{socket.gethostname()}:{os.getpid()}"
TRANSIENT = ("OperationalError", "InterfaceError", "StorageInternalError", "DisconnectionError")


def _retrying(method, seconds: float):
    @functools.wraps(method)
    def call(*args, **kwargs):
        deadline = time.monotonic() + seconds
        delay = 0.5
        while True:
            try:
                return method(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - only the transient kinds are retried
                kind = type(exc).__name__
                if kind not in TRANSIENT and type(exc.__cause__).__name__ not in TRANSIENT:
                    raise
                if time.monotonic() > deadline:
                    raise
                log.warning("study database unavailable (%s); retrying in %.1f s", kind, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    return call


# RDBStorage's private methods that Optuna's own cache layer (_CachedStorage) calls directly:
# without them a trial's suggest_* during a database restart fails the trial (seen in a CI run)
CACHE_CALLS = (
    "_create_new_trial",
    "_set_trial_param",
    "_get_best_trial_id",
    "_get_trials",
    "_get_stale_trial_ids",
)


class RetryingStorage(optuna.storages.RDBStorage):
    """RDBStorage whose every call retries transient database errors for `retry_s` seconds."""

    def __init__(self, url: str, retry_s: float, **kwargs):
        super().__init__(url, **kwargs)
        names = [n for n in dir(optuna.storages.BaseStorage) if not n.startswith("_")]
        for name in [*names, *CACHE_CALLS]:
            if callable(getattr(self, name, None)):
                setattr(self, name, _retrying(getattr(self, name), retry_s))


def creating_tables_at_once(exc: BaseException) -> bool:
    """Workers started together on an empty database all create Optuna's tables: PostgreSQL lets
    one win and fails the others with a unique violation on its catalogue (or "already exists").
    Opening the storage again then finds the tables."""
    names = {type(exc).__name__, type(exc.__cause__).__name__, type(exc.__context__).__name__}
    return bool(names & {"IntegrityError", "UniqueViolation", "DuplicateTable", "DuplicateObject"})


def make_storage(t: DictConfig, attempts: int = 5) -> RetryingStorage:
    """The study's storage, with a heartbeat; an unreachable database is one clear error."""
    url = str(t.storage)
    engine = {"pool_pre_ping": True} if not url.startswith("sqlite") else {}
    for attempt in range(1, attempts + 1):
        try:
            return RetryingStorage(
                url,
                retry_s=float(t.retry_s),
                engine_kwargs=engine,
                heartbeat_interval=int(t.heartbeat_s),
                grace_period=2 * int(t.heartbeat_s),
            )
        except Exception as exc:  # noqa: BLE001 - whatever the driver says, said in one line
            if attempt < attempts and creating_tables_at_once(exc):
                log.info("another worker is creating the study tables; opening it again")
                time.sleep(0.5 * attempt)
                continue
            reason = mask(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise ConfigError(
                f"cannot reach the study database tune.storage={mask(url)}: {reason}"
            ) from exc
    raise AssertionError("unreachable")  # the loop returns or raises


def open_study(cfg: DictConfig, sampler, pruner) -> tuple[optuna.Study, bool]:
    """(study, created here). Concurrent workers: one creates it, the others load it."""
    t = cfg.tune
    storage = make_storage(t)
    try:
        study = optuna.create_study(
            study_name=t.study_name,
            storage=storage,
            direction="maximize",
            sampler=sampler,
            pruner=pruner,
        )
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(
            study_name=t.study_name, storage=storage, sampler=sampler, pruner=pruner
        )
        created = False
    if created:
        for params in t.enqueue_trials or []:
            study.enqueue_trial(OmegaConf.to_container(params, resolve=True), skip_if_exists=True)
    return study, created


def wait_for_other_workers(study: optuna.Study, poll_s: float = 2.0, timeout_s: float = 86400):
    """Until no trial of the study is running (a dead worker's trials fail by heartbeat)."""
    deadline = time.monotonic() + timeout_s
    announced = False
    while time.monotonic() < deadline:
        optuna.storages.fail_stale_trials(study)
        running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        if not running:
            return
        if not announced:
            print(f"tune: waiting for {len(running)} trial(s) of other workers to finish")
            announced = True
        time.sleep(poll_s)
