"""Prometheus metrics of the FastAPI service (prometheus_client, one registry per app):

ticketml_requests_total{endpoint, status, model_version}      counter
ticketml_request_seconds{endpoint}                            histogram
ticketml_batch_size{endpoint}                                 histogram (texts per request)
ticketml_model_info{name, version, run_id, uri}               gauge, 1 for the serving model
ticketml_model_reloads_total{result}                          counter
ticketml_predictions_total{task, label, model_version}        counter (labels given)
ticketml_prediction_log_records_total                         counter (records the log wrote)
ticketml_prediction_log_dropped_total{reason}                 counter (queue_full, write_error)
ticketml_inflight_texts                                       gauge (texts being scored now)
"""

from __future__ import annotations

import threading
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.types import ASGIApp, Receive, Scope, Send

from ticketml import TASKS

disable_created_metrics()  # no `_created` series beside each counter: nothing here reads them
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
ENDPOINTS = {"/predict", "/predict/batch", "/feedback", "/ready", "/health", "/reload", "/metrics"}
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Serving:
    """The collector of what is read when scraped: the serving model and the prediction log's
    counters (set by Metrics.render)."""

    def __init__(self):
        self.identity, self.prediction_log = None, None

    def collect(self):
        info = GaugeMetricFamily(
            "ticketml_model_info",
            "the serving model (1)",
            labels=["name", "version", "run_id", "uri"],
        )
        if self.identity is not None:
            i = self.identity
            info.add_metric([i.name or "", i.version or "", i.run_id or "", i.uri], 1)
        yield info
        if self.prediction_log is not None:
            counts = self.prediction_log.counters()
            written = CounterMetricFamily(
                "ticketml_prediction_log_records",
                "prediction records written to the prediction log",
            )
            written.add_metric([], counts["written"])
            yield written
            dropped = CounterMetricFamily(
                "ticketml_prediction_log_dropped",
                "prediction records dropped, by reason (the request was answered)",
                labels=["reason"],
            )
            for reason, n in sorted(counts["dropped"].items()):
                dropped.add_metric([reason], n)
            yield dropped


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.requests = Counter(
            "ticketml_requests",
            "HTTP answers by endpoint, status and the model version serving",
            ["endpoint", "status", "model_version"],
            registry=r,
        )
        self.latency = Histogram(
            "ticketml_request_seconds",
            "seconds from request to answer, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch = Histogram(
            "ticketml_batch_size",
            "texts per prediction request, by endpoint",
            ["endpoint"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.reloads = Counter(
            "ticketml_model_reloads",
            "reloads by result (swapped, unchanged, failed)",
            ["result"],
            registry=r,
        )
        self.predictions = Counter(
            "ticketml_predictions",
            "labels given, by task, label and model version",
            ["task", "label", "model_version"],
            registry=r,
        )
        self.serving = Serving()
        r.register(self.serving)
        self.scrape = threading.Lock()  # one scrape at a time reads `serving`

    def in_flight(self, admission) -> None:
        """Texts being scored now, read from the service's admission control when scraped."""
        Gauge(
            "ticketml_inflight_texts", "texts being scored now", registry=self.registry
        ).set_function(lambda: admission.in_flight)

    def predicted(self, rows: list[dict], version: str, tasks=TASKS) -> None:
        """Count the labels given (what a drift dashboard compares with the training mix)."""
        for row in rows:
            for task in tasks:
                self.predictions.labels(task, str(row[task]), version).inc()

    def request(self, endpoint: str, status: int, seconds: float, version: str) -> None:
        self.requests.labels(endpoint, str(status), version).inc()
        self.latency.labels(endpoint).observe(seconds)

    def batch_size(self, endpoint: str, size: int) -> None:
        self.batch.labels(endpoint).observe(size)

    def reload(self, result: str) -> None:
        self.reloads.labels(result).inc()

    def render(self, identity, prediction_log=None) -> bytes:
        """The exposition text, the serving model and the log's counters as they are now."""
        with self.scrape:
            self.serving.identity, self.serving.prediction_log = identity, prediction_log
            return generate_latest(self.registry)


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
