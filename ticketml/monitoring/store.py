"""The prediction log and the feedback beside it: JSON-lines files in a folder (the local
default) or tables in a database (`postgresql+psycopg://…` on the team stack, or `sqlite:///…`).

Every prediction the service makes goes on a bounded queue and one thread writes it, so logging
never slows or fails a request: a full queue or a failed write (a full disk) drops the record
and counts it (`/metrics`: ticketml_prediction_log_dropped_total). A file record is one line
written by one `write` call on a file opened for appending, so a killed server leaves every
record it wrote whole; a line a failed write cut short is skipped by the reader (and counted).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import threading
import time
import uuid
from pathlib import Path

from ticketml import TASKS
from ticketml.monitoring.features import text_features, text_hash

log = logging.getLogger(__name__)

PREDICTIONS, FEEDBACK = "predictions", "feedback"
COLUMNS = {  # the record of one prediction; *_scores are JSON objects label -> probability
    PREDICTIONS: (
        "request_id time source model_uri model_name model_version run_id topic priority "
        "topic_score priority_score topic_scores priority_scores needs_review latency_ms "
        "text_sha256 text_chars language oov_share text"
    ).split(),
    FEEDBACK: "key request_id time text_sha256 text topic priority".split(),
}


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_request_id() -> str:
    return uuid.uuid4().hex


def is_database(target: str) -> bool:
    return "://" in str(target)


def prediction_records(
    rows: list[dict],
    texts: list[str],
    request_id: str,
    identity,
    source: str,
    latency_ms: float | None,
    log_text: bool,
    vocabulary=None,
    ids: list[str] | None = None,
) -> list[dict]:
    """One record per prediction; a batch's items are `<request_id>:<index>`."""
    stamp = now_iso()
    records = []
    for i, (row, text) in enumerate(zip(rows, texts, strict=True)):
        record = {
            "request_id": ids[i]
            if ids
            else (request_id if len(rows) == 1 else f"{request_id}:{i}"),
            "time": stamp,
            "source": source,
            "model_uri": getattr(identity, "uri", None),
            "model_name": getattr(identity, "name", None),
            "model_version": getattr(identity, "version", None),
            "run_id": getattr(identity, "run_id", None),
            "latency_ms": None if latency_ms is None else round(float(latency_ms), 3),
            "needs_review": row.get("needs_review"),
            **text_features(text, vocabulary),
            "text": text if log_text else None,
        }
        for task in TASKS:
            scores = row[f"{task}_scores"]
            record[task] = row[task]
            record[f"{task}_score"] = float(scores[row[task]])
            record[f"{task}_scores"] = scores
        records.append(record)
    return records


class JsonlSink:
    """Records appended to `<folder>/<kind>-<start>-<pid>.jsonl`; a new file past `rotate_bytes`."""

    def __init__(self, folder: str | Path, kind: str, rotate_bytes: int = 64 * 2**20):
        self.folder, self.kind, self.rotate_bytes = Path(folder), kind, int(rotate_bytes)
        self.fd: int | None = None
        self.size = 0
        self.torn = False  # the last write stopped mid-line: the next one starts a new line

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.folder / f"{self.kind}-{stamp}-{os.getpid()}.jsonl"
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self.size = 0

    def write(self, records: list[dict]) -> None:
        if self.fd is None or self.size >= self.rotate_bytes:
            self.close()
            self._open()
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        view = memoryview((("\n" if self.torn else "") + data).encode("utf-8", "surrogatepass"))
        written = 0
        try:
            while written < len(view):
                written += os.write(self.fd, view[written:])
        except OSError:
            self.torn = written > 0
            raise
        self.torn = False
        self.size += written

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class SqlSink:
    """Records inserted into `ticketml_<kind>` (created when missing); feedback upserts by key."""

    def __init__(self, url: str, kind: str):
        import sqlalchemy as sa

        self.kind = kind
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        self.table = table_for(kind, sa.MetaData())
        self.table.metadata.create_all(self.engine)

    def write(self, records: list[dict]) -> None:
        rows = [_sql_row(r) for r in records]
        with self.engine.begin() as conn:
            if self.kind == FEEDBACK:
                for row in rows:
                    conn.execute(self._upsert(row))
            else:
                conn.execute(self.table.insert(), rows)

    def _upsert(self, row: dict):
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(self.table).values(**row)
        return stmt.on_conflict_do_update(
            index_elements=["key"], set_={k: v for k, v in row.items() if k != "key"}
        )

    def close(self) -> None:
        self.engine.dispose()


def table_for(kind: str, metadata):
    import sqlalchemy as sa

    types = dict.fromkeys(("latency_ms", "topic_score", "priority_score", "oov_share"), sa.Float)
    types |= dict.fromkeys(("text", "topic_scores", "priority_scores"), sa.Text)
    types |= {"text_chars": sa.Integer, "needs_review": sa.Boolean}
    key = "key" if kind == FEEDBACK else "request_id"
    columns = [
        sa.Column(name, types.get(name, sa.String(256)), primary_key=name == key)
        for name in COLUMNS[kind]
    ]
    return sa.Table(f"ticketml_{kind}", metadata, *columns)


def _sql_row(record: dict) -> dict:
    return {k: json.dumps(v) if isinstance(v, dict) else v for k, v in record.items()}


def open_sink(target: str, kind: str, rotate_mb: float = 64):
    if is_database(target):
        return SqlSink(target, kind)
    return JsonlSink(target, kind, int(float(rotate_mb) * 2**20))


class PredictionLog:
    """A bounded queue and one writer thread in front of a sink.

    `submit` never blocks (a full queue drops and counts); `submit_wait` (batch scoring) waits
    for room instead. Features of the text (length, language, unknown-token share) are computed
    by the writer, off the request's path; the text itself is kept only with `log_text`."""

    def __init__(self, target: str, log_text: bool = False, queue_size: int = 10000, rotate_mb=64):
        self.target, self.log_text = str(target), bool(log_text)
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, int(queue_size)))
        self.rotate_mb = rotate_mb
        self.written = 0
        self.dropped = {"queue_full": 0, "write_error": 0}
        self.last_error: str | None = None
        self.lock = threading.Lock()
        self.idle = threading.Event()
        self.idle.set()
        self.thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self.thread.start()

    @classmethod
    def from_config(cls, cfg) -> PredictionLog:
        """The log `serve.prediction_log` names, with serve.log_text / log_queue_size /
        log_rotate_mb (serve, infer)."""
        s = cfg.serve
        return cls(
            s.prediction_log,
            log_text=bool(s.log_text),
            queue_size=int(s.log_queue_size),
            rotate_mb=float(s.log_rotate_mb),
        )

    def submit(
        self, rows, texts, request_id, identity, source="api", latency_ms=None, vocabulary=None
    ) -> bool:
        try:
            self.idle.clear()
            self.queue.put_nowait(
                (rows, texts, request_id, identity, source, latency_ms, vocabulary, None)
            )
            return True
        except queue.Full:
            with self.lock:
                self.dropped["queue_full"] += len(rows)
            return False

    def submit_wait(self, rows, texts, ids, identity, source, vocabulary=None) -> None:
        self.idle.clear()
        self.queue.put((rows, texts, None, identity, source, None, vocabulary, ids))

    def _run(self) -> None:
        sink = None
        while True:
            item = self.queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < 256:
                try:
                    more = self.queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self.queue.put(None)
                    break
                batch.append(more)
            records = []
            try:
                for rows, texts, rid, identity, source, latency, vocab, ids in batch:
                    records += prediction_records(
                        rows, texts, rid, identity, source, latency, self.log_text, vocab, ids
                    )
                sink = sink or open_sink(self.target, PREDICTIONS, self.rotate_mb)
                sink.write(records)
                with self.lock:
                    self.written += len(records)
            except Exception as exc:  # noqa: BLE001 - a log that fails must not fail serving
                from ticketml.redact import mask  # a database URL in the message: no password

                with self.lock:
                    # every prediction of the batch, also when building its records failed half-way
                    self.dropped["write_error"] += sum(len(item[0]) for item in batch)
                    first = self.last_error is None
                    self.last_error = mask(f"{type(exc).__name__}: {exc}")
                if first:
                    log.warning("prediction log: write failed, dropping: %s", self.last_error)
            finally:
                if self.queue.empty():
                    self.idle.set()
        if sink is not None:
            sink.close()

    def flush(self, timeout: float = 30) -> bool:
        """Wait until everything submitted so far is written (or dropped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.thread.is_alive():
            if self.queue.empty() and self.idle.wait(0.05):
                return True
        return False

    def close(self, timeout: float = 30) -> None:
        """Write what is queued, then stop the writer (a second close does nothing)."""
        if not self.thread.is_alive():
            return
        self.flush(timeout)
        self.queue.put(None)
        self.thread.join(timeout)

    def counters(self) -> dict:
        with self.lock:
            return {"written": self.written, "dropped": dict(self.dropped)}


class FeedbackStore:
    """Agents' corrections, one per request id (or per text); a second one for the same key
    replaces the first (`put` says which)."""

    def __init__(self, target: str):
        self.target = str(target)
        self.lock = threading.Lock()
        self.sink = open_sink(self.target, FEEDBACK)
        self.keys = set(read_feedback(self.target)["key"]) if not is_database(target) else None

    def put(
        self,
        request_id: str | None,
        text: str | None,
        topic: str | None,
        priority: str | None,
    ) -> tuple[str, str]:
        key = request_id or f"text:{text_hash(text)}"
        record = {
            "key": key,
            "request_id": request_id,
            "time": now_iso(),
            "text_sha256": text_hash(text) if text is not None else None,
            "text": text,
            "topic": topic,
            "priority": priority,
        }
        with self.lock:
            if self.keys is None:
                seen = self._db_has(key)
            else:
                seen = key in self.keys
                self.keys.add(key)
            self.sink.write([record])
        return key, "replaced" if seen else "new"

    def _db_has(self, key: str) -> bool:
        import sqlalchemy as sa

        with self.sink.engine.connect() as conn:
            found = conn.execute(
                sa.select(self.sink.table.c.key).where(self.sink.table.c.key == key)
            )
            return found.first() is not None

    def close(self) -> None:
        self.sink.close()


def _read_lines(paths) -> tuple[list[dict], int]:
    records, torn = [], 0
    for path in sorted(paths):
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    torn += 1
    return records, torn


def read_records(target: str, kind: str = PREDICTIONS):
    """Every record of `kind` as a DataFrame (`time` parsed, UTC); `.attrs["torn"]` counts the
    lines a failed write cut short (skipped)."""
    import pandas as pd

    torn = 0
    if is_database(target):
        import sqlalchemy as sa

        engine = sa.create_engine(target)
        try:
            if not sa.inspect(engine).has_table(f"ticketml_{kind}"):
                frame = pd.DataFrame(columns=COLUMNS[kind])
            else:
                frame = pd.read_sql_table(f"ticketml_{kind}", engine)
        finally:
            engine.dispose()
        for col in ("topic_scores", "priority_scores"):
            if col in frame:
                frame[col] = frame[col].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    else:
        folder = Path(target)
        paths = list(folder.glob(f"{kind}-*.jsonl"))
        if kind == PREDICTIONS:
            paths += list(folder.glob("spark-*/part-*.json"))
        records, torn = _read_lines(paths)
        frame = (
            pd.DataFrame(records, columns=COLUMNS[kind])
            if records
            else pd.DataFrame(columns=COLUMNS[kind])
        )
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    frame.attrs["torn"] = torn
    return frame


def read_feedback(target: str):
    """The feedback, the latest per key."""
    frame = read_records(target, FEEDBACK)
    if frame.empty:
        return frame
    return frame.sort_values("time", kind="stable").drop_duplicates("key", keep="last")
