"""What the service is serving: the loaded model and its identity, and how it follows a moved
@champion (load the new version beside the old one, swap, or keep the old one and say why)."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class FixedSource:
    """A model source that cannot move: `loader()` returns (classifier, identity or text)."""

    def __init__(self, loader):
        self.loader = loader

    def current(self):
        return None

    def load(self, identity=None):
        return self.loader()


def as_identity(value):
    from ticketml.predictor import ModelIdentity

    return value if isinstance(value, ModelIdentity) else ModelIdentity(uri=str(value))


class ModelState:
    """The model loads in the background so /health answers at once and /ready reports progress.
    `current` is one (classifier, identity) pair, replaced whole: a request reads it once and is
    answered, and labelled, by that one model even while a new version is swapped in."""

    def __init__(self, source):
        self.source = source
        self.current: tuple | None = None
        self.error: str | None = None
        self.reload_error: str | None = None
        self.failed_version: str | None = None  # the last version that failed to load
        self.lock = threading.Lock()
        self.loaded = threading.Event()  # the first load has ended, served or failed
        self.stopped = threading.Event()  # the app has shut down: the reload loop ends
        self.on_reload = lambda result: None  # metrics hook: "swapped", "unchanged", "failed"

    @property
    def classifier(self):
        return self.current[0] if self.current else None

    def load(self) -> None:
        try:
            classifier, identity = self.source.load()
            with self.lock:
                self.current = (classifier, as_identity(identity))
            log.info("model ready: %s", self.current[1].describe())
        except Exception as exc:  # noqa: BLE001 - reported by /ready, the process keeps serving
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("model failed to load: %s", self.error)
        finally:
            self.loaded.set()

    def reload(self) -> str:
        """Load the version the source points to now, beside the one serving, and swap it in;
        on failure keep serving the old one and say why. Returns what happened."""
        try:
            target = self.source.current()
        except Exception as exc:  # noqa: BLE001 - a registry hiccup must not stop serving
            self.reload_error = f"cannot resolve {getattr(self.source, 'uri', '?')}: {exc}"
            self._nothing_serving_because(self.reload_error)
            self.on_reload("failed")
            return self.reload_error
        if target is None:
            return "the model source is fixed: nothing to follow"
        if self.current and self.current[1].version == target.version:
            self.on_reload("unchanged")
            return f"already serving version {target.version}"
        if target.version is not None and target.version == self.failed_version:
            # a version's files do not change: loading it again every interval would only cost
            # memory and CPU (and log the same error); the next move of the alias is tried
            self.on_reload("unchanged")
            return f"{self.reload_error} (not retried until the alias moves)"
        try:
            classifier, identity = self.source.load(target)
        except Exception as exc:  # noqa: BLE001 - keep the old model serving
            self.reload_error = f"version {target.version} failed to load: {exc}"
            self.failed_version = target.version
            self._nothing_serving_because(self.reload_error)
            log.error("reload: %s; still serving %s", self.reload_error, self.describe())
            self.on_reload("failed")
            return self.reload_error
        with self.lock:
            self.current = (classifier, as_identity(identity))
        self.error = self.reload_error = self.failed_version = None
        log.info("reload: now serving %s", self.describe())
        self.on_reload("swapped")
        return f"now serving version {target.version}"

    def _nothing_serving_because(self, reason: str) -> None:
        if self.current is None:  # /ready's reason is the latest one
            self.error = reason

    def describe(self) -> str:
        return self.current[1].describe() if self.current else "nothing"

    def follow(self, interval_s: float) -> None:
        """Check the source every `interval_s` seconds (serve.reload_interval_s), also while
        nothing serves yet: a server started before its registry has a @champion (a fresh
        compose stack) serves the first one promoted."""
        while not self.stopped.wait(interval_s):
            if self.loaded.is_set():  # not beside a first load still running
                self.reload()


class Admission:
    """A cap on the texts being scored at once (serve.max_inflight_texts): a request that would
    take the count past it is refused (the API answers 429 with Retry-After) instead of queueing
    in the thread pool, where each waiting batch holds its memory. A request is always admitted
    when nothing is in flight, so one batch up to serve.max_batch always gets through."""

    def __init__(self, limit: int):
        self.limit = int(limit)
        self.in_flight = 0
        self.lock = threading.Lock()

    def admit(self, n: int) -> bool:
        with self.lock:
            if self.limit > 0 and self.in_flight and self.in_flight + n > self.limit:
                return False
            self.in_flight += n
            return True

    def release(self, n: int) -> None:
        with self.lock:
            self.in_flight -= n
