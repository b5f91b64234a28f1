"""Prometheus metrics of the FastAPI service, in the text exposition format (no extra package).

ticketml_requests_total{endpoint, status, model_version}      counter
ticketml_request_seconds{endpoint}                            histogram
ticketml_batch_size{endpoint}                                 histogram (texts per request)
ticketml_model_info{name, version, run_id}                    gauge, 1 for the serving model
ticketml_model_reloads_total{result}                          counter
ticketml_predictions_total{task, label, model_version}        counter (labels given)
ticketml_prediction_log_records_total                         counter (records the log wrote)
ticketml_prediction_log_dropped_total{reason}                 counter (queue_full, write_error)
"""

from __future__ import annotations

import bisect
import threading
import time

from starlette.types import ASGIApp, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
ENDPOINTS = {"/predict", "/predict/batch", "/feedback", "/ready", "/health", "/reload", "/metrics"}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HELP = {
    "ticketml_requests_total": "HTTP answers by endpoint, status and the model version serving",
    "ticketml_request_seconds": "seconds from request to answer, by endpoint",
    "ticketml_batch_size": "texts per prediction request, by endpoint",
    "ticketml_model_reloads_total": "reloads by result (swapped, unchanged, failed)",
    "ticketml_predictions_total": "labels given, by task, label and model version",
    "ticketml_model_info": "the serving model (1)",
    "ticketml_prediction_log_records_total": "prediction records written to the prediction log",
    "ticketml_prediction_log_dropped_total": "prediction records dropped, by reason (the "
    "request was answered)",
}


def _header(name: str, kind: str) -> list[str]:
    return [f"# HELP {name} {HELP[name]}", f"# TYPE {name} {kind}"]


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"


class Histogram:
    def __init__(self, buckets: tuple):
        self.buckets, self.counts, self.sum, self.count = buckets, [0] * len(buckets), 0.0, 0

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.buckets, value)
        if i < len(self.counts):
            self.counts[i] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, **labels: str) -> list[str]:
        out, running = [], 0
        for bound, count in zip(self.buckets, self.counts, strict=True):
            running += count
            out.append(f"{name}_bucket{_labels(**labels, le=str(bound))} {running}")
        out.append(f"{name}_bucket{_labels(**labels, le='+Inf')} {self.count}")
        out.append(f"{name}_sum{_labels(**labels)} {self.sum}")
        out.append(f"{name}_count{_labels(**labels)} {self.count}")
        return out


class Metrics:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.batch: dict[str, Histogram] = {}
        self.reloads: dict[str, int] = {}
        self.predictions: dict[tuple[str, str, str], int] = {}

    def predicted(self, rows: list[dict], version: str, tasks=("topic", "priority")) -> None:
        """Count the labels given (what a drift dashboard compares with the training mix)."""
        with self.lock:
            for row in rows:
                for task in tasks:
                    key = (task, str(row[task]), version)
                    self.predictions[key] = self.predictions.get(key, 0) + 1

    def request(self, endpoint: str, status: int, seconds: float, version: str) -> None:
        with self.lock:
            key = (endpoint, str(status), version)
            self.requests[key] = self.requests.get(key, 0) + 1
            self.latency.setdefault(endpoint, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def batch_size(self, endpoint: str, size: int) -> None:
        with self.lock:
            self.batch.setdefault(endpoint, Histogram(BATCH_BUCKETS)).observe(size)

    def reload(self, result: str) -> None:
        with self.lock:
            self.reloads[result] = self.reloads.get(result, 0) + 1

    def render(self, identity, prediction_log=None) -> str:
        lines = _header("ticketml_requests_total", "counter")
        with self.lock:
            for (endpoint, status, version), n in sorted(self.requests.items()):
                labels = _labels(endpoint=endpoint, status=status, model_version=version)
                lines.append(f"ticketml_requests_total{labels} {n}")
            lines += _header("ticketml_request_seconds", "histogram")
            for endpoint, hist in sorted(self.latency.items()):
                lines += hist.lines("ticketml_request_seconds", endpoint=endpoint)
            lines += _header("ticketml_batch_size", "histogram")
            for endpoint, hist in sorted(self.batch.items()):
                lines += hist.lines("ticketml_batch_size", endpoint=endpoint)
            lines += _header("ticketml_model_reloads_total", "counter")
            for result, n in sorted(self.reloads.items()):
                lines.append(f"ticketml_model_reloads_total{_labels(result=result)} {n}")
            lines += _header("ticketml_predictions_total", "counter")
            for (task, label, version), n in sorted(self.predictions.items()):
                labels = _labels(task=task, label=label, model_version=version)
                lines.append(f"ticketml_predictions_total{labels} {n}")
        lines += _header("ticketml_model_info", "gauge")
        if identity is not None:
            labels = _labels(
                name=identity.name or "",
                version=identity.version or "",
                run_id=identity.run_id or "",
                uri=identity.uri,
            )
            lines.append(f"ticketml_model_info{labels} 1")
        if prediction_log is not None:
            counts = prediction_log.counters()
            lines += _header("ticketml_prediction_log_records_total", "counter")
            lines.append(f"ticketml_prediction_log_records_total {counts['written']}")
            lines += _header("ticketml_prediction_log_dropped_total", "counter")
            for reason, n in sorted(counts["dropped"].items()):
                lines.append(f"ticketml_prediction_log_dropped_total{_labels(reason=reason)} {n}")
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Counts every HTTP answer (4xx included, whatever produced it) and times it."""

    def __init__(self, app: ASGIApp, metrics: Metrics, version_of):
        self.app, self.metrics, self.version_of = app, metrics, version_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def recording_send(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            path = scope.get("path", "")
            path = path if path in ENDPOINTS else "other"  # bounded label values
            if path != "/metrics":
                self.metrics.request(
                    path, status[0], time.perf_counter() - started, self.version_of()
                )
