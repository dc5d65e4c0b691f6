"""Prometheus metrics: requests by route and status, bytes in and out,
latency, and the store's own figures.

Under gunicorn with several worker processes, each worker only sees its own
requests. ``blobstore serve`` therefore sets ``PROMETHEUS_MULTIPROC_DIR`` (a
fresh temporary directory) before any worker starts; every worker then writes
its counters there and ``/metrics`` adds them up across workers
(``prometheus_client`` multiprocess mode). The store figures are read from
the catalog at scrape time, so they are the same whichever worker answers.

Latency is measured to the moment the response headers are ready; the time a
large body takes to stream is in the byte counters' rate, not here.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import falcon
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import disable_created_metrics
from prometheus_client import generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from blobstore import Store
from blobstore.errors import BlobStoreError

__all__ = ["Metrics", "MetricsMiddleware", "MetricsResource", "multiprocess_dir"]

log = logging.getLogger(__name__)

# The *_created series double every counter for little use.
disable_created_metrics()

_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"})
_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
    300,
)


def multiprocess_dir() -> str | None:
    """The multiprocess directory, when this process is one of several."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class StoreCollector(Collector):
    """The store's blob totals, read from the catalog at each scrape."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            totals = self._store.stats()
        except BlobStoreError as exc:
            log.warning("cannot read store stats for /metrics: %s", exc)
            yield GaugeMetricFamily(
                "blobstore_catalog_up", "Whether the catalog answered", value=0
            )
            return
        yield GaugeMetricFamily(
            "blobstore_catalog_up", "Whether the catalog answered", value=1
        )
        yield GaugeMetricFamily(
            "blobstore_blobs", "Plain blobs stored (with bytes)", value=totals.blobs
        )
        yield GaugeMetricFamily(
            "blobstore_blob_bytes", "Bytes held by plain blobs", value=totals.bytes
        )
        yield GaugeMetricFamily(
            "blobstore_composite_blobs",
            "Composite blobs (finished multipart uploads)",
            value=totals.composites,
        )


class Metrics:
    """The service's metrics, in a registry of their own (so several apps,
    as in tests, never collide in the global one)."""

    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "blobstore_http_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.received = Counter(
            "blobstore_http_received_bytes",
            "Request body bytes read",
            ["route"],
            registry=self.registry,
        )
        self.sent = Counter(
            "blobstore_http_sent_bytes",
            "Response body bytes sent (by Content-Length)",
            ["route"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "blobstore_http_request_duration_seconds",
            "Time to the response headers",
            ["route", "method"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self._store_collector = StoreCollector(store)
        if multiprocess_dir() is None:
            self.registry.register(self._store_collector)

    def exposition(self) -> bytes:
        """The text format of every metric, across workers when there are several."""
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(self._store_collector)
        return generate_latest(registry)


def _sent_bytes(req: falcon.Request, resp: falcon.Response) -> int:
    if req.method == "HEAD":
        return 0
    if resp.content_length is not None:
        return int(resp.content_length)
    if resp.text is not None:
        return len(resp.text.encode())
    if resp.data is not None:
        return len(resp.data)
    return 0


class MetricsMiddleware:
    """Counts every request the native app answers, errors included."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        resource: Any,
        req_succeeded: bool,
    ) -> None:
        m = self._metrics
        route = req.uri_template or "unmatched"
        method = req.method if req.method in _METHODS else "OTHER"
        m.requests.labels(route, method, str(resp.status_code)).inc()
        m.latency.labels(route, method).observe(
            time.perf_counter() - req.context.started
        )
        body = getattr(req.context, "body", None)
        if body is not None and body.count:
            m.received.labels(route).inc(body.count)
        sent = _sent_bytes(req, resp)
        if sent:
            m.sent.labels(route).inc(sent)


class MetricsResource:
    """``GET /metrics``: the Prometheus text format."""

    access = {"GET": "read"}

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = self._metrics.exposition()
