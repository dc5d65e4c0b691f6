"""Prometheus metrics: requests by route and status, bytes in and out,
latency, and the store's own figures (blobs, drives, and the last GC, heal
and check runs as recorded in the catalog).

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
from datetime import datetime
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
from blobstore.jobs import job_states

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
    """The store's figures, read at each scrape: blob totals, the backend's
    drives, and the operator jobs' last results as recorded in the catalog
    (:mod:`blobstore.jobs`), so any worker on any node answers the same.
    A scrape costs a few catalog reads and a ``statvfs`` per drive."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            totals = self._store.stats()
            jobs = job_states(self._store)
        except BlobStoreError as exc:
            log.warning("cannot read store stats for /metrics: %s", exc)
            yield _gauge("blobstore_catalog_up", "Whether the catalog answered", 0)
            return
        yield _gauge("blobstore_catalog_up", "Whether the catalog answered", 1)
        yield _gauge("blobstore_blobs", "Plain blobs stored (with bytes)", totals.blobs)
        yield _gauge("blobstore_blob_bytes", "Bytes held by plain blobs", totals.bytes)
        yield _gauge(
            "blobstore_composite_blobs",
            "Composite blobs (finished multipart uploads)",
            totals.composites,
        )
        yield from _gc_metrics(jobs["gc"])
        yield from _job_metrics(jobs)
        yield from self._backend_metrics()

    def _backend_metrics(self) -> Iterator[GaugeMetricFamily]:
        try:
            stats = self._store.backend_stats()
        except BlobStoreError as exc:
            log.warning("cannot read backend stats for /metrics: %s", exc)
            yield _gauge("blobstore_backend_up", "Whether the backend answered", 0)
            return
        yield _gauge("blobstore_backend_up", "Whether the backend answered", 1)
        if "free_bytes" in stats:
            yield _gauge(
                "blobstore_backend_free_bytes",
                "Blob bytes that still fit (the fullest drive decides)",
                stats["free_bytes"],
            )
        if "needs_heal" in stats:
            yield _gauge(
                "blobstore_backend_needs_heal_blobs",
                "Blobs the answering worker read with missing or damaged "
                "shards since they were last healed",
                stats["needs_heal"],
            )
        drives = stats.get("drives")
        if not isinstance(drives, list):
            return
        online = GaugeMetricFamily(
            "blobstore_backend_drive_online",
            "Whether the drive answers",
            labels=["drive"],
        )
        free = GaugeMetricFamily(
            "blobstore_backend_drive_free_bytes",
            "Free bytes on the drive (available to the service)",
            labels=["drive"],
        )
        total = GaugeMetricFamily(
            "blobstore_backend_drive_size_bytes", "Size of the drive", labels=["drive"]
        )
        for drive in drives:
            path = str(drive.get("path"))
            online.add_metric([path], 1 if drive.get("online") else 0)
            if drive.get("online"):
                free.add_metric([path], drive.get("free_bytes", 0))
                total.add_metric([path], drive.get("total_bytes", 0))
        yield online
        yield free
        yield total


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _timestamp(doc: dict[str, Any]) -> float | None:
    try:
        return datetime.fromisoformat(doc["finished"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


#: GC figures of the last successful pass: (metric, help, summary key).
_GC_FIGURES = (
    ("duration_seconds", "How long the pass took", "duration"),
    ("scanned_blobs", "Blobs put before the cut-off that it looked at", "scanned"),
    ("deleted_blobs", "Blobs it deleted", "deleted"),
    ("reclaimed_bytes", "Bytes it reclaimed from deleted blobs", "reclaimed_bytes"),
    ("orphans_swept", "Orphan backend objects it removed", "orphans_swept"),
    ("errors", "Backend objects it could not remove", "errors"),
)


def _gc_metrics(gc: dict[str, Any]) -> Iterator[GaugeMetricFamily]:
    """The last GC pass, from the catalog. Absent until a pass has run, so
    an alert on ``absent(...)`` catches a GC job that never ran."""
    run, failure = gc.get("last_run"), gc.get("last_failure")
    if run is not None:
        when = _timestamp(run)
        if when is not None:
            yield _gauge(
                "blobstore_gc_last_success_timestamp_seconds",
                "When the last successful GC pass finished (Unix time)",
                when,
            )
        for suffix, documentation, key in _GC_FIGURES:
            yield _gauge(
                f"blobstore_gc_last_{suffix}",
                f"{documentation} (last successful GC pass)",
                run.get(key, 0),
            )
        uploads = GaugeMetricFamily(
            "blobstore_gc_last_uploads_expired",
            "Uploads the last successful GC pass removed",
            labels=["kind"],
        )
        uploads.add_metric(["native"], run.get("uploads_expired", 0))
        uploads.add_metric(["s3"], run.get("s3_uploads_expired", 0))
        yield uploads
    if failure is not None:
        when = _timestamp(failure)
        if when is not None:
            yield _gauge(
                "blobstore_gc_last_failure_timestamp_seconds",
                "When the last failed GC pass stopped (Unix time)",
                when,
            )


def _last_job(
    job: str, doc: dict[str, Any] | None, label: str, keys: tuple[str, ...]
) -> Iterator[GaugeMetricFamily]:
    """When the last whole-store *job* finished, and its blobs by *label*."""
    if doc is None:
        return
    when = _timestamp(doc)
    if when is not None:
        yield _gauge(
            f"blobstore_{job}_last_timestamp_seconds",
            f"When the last whole-store {job} finished (Unix time)",
            when,
        )
    blobs = GaugeMetricFamily(
        f"blobstore_{job}_last_blobs",
        f"Blobs by {label} in the last whole-store {job}",
        labels=[label],
    )
    for key in keys:
        blobs.add_metric([key], doc.get(key, 0))
    yield blobs


def _job_metrics(jobs: dict[str, Any]) -> Iterator[GaugeMetricFamily]:
    """The last whole-store heal and check, and the quarantine count."""
    yield from _last_job(
        "heal",
        jobs.get("heal"),
        "outcome",
        ("healthy", "healed", "degraded", "unrecoverable", "errors"),
    )
    yield from _last_job(
        "check",
        jobs.get("check"),
        "result",
        ("ok", "healed", "corrupt", "missing", "unreadable"),
    )
    quarantined = jobs.get("quarantined") or {}
    yield _gauge(
        "blobstore_quarantined_blobs",
        "Blobs `blobstore check --quarantine` has taken out of service, ever",
        quarantined.get("total", 0),
    )


class Metrics:
    """The service's metrics, in a registry of their own (so several apps,
    as in tests, never collide in the global one)."""

    def __init__(self, store: Store) -> None:
        self._store = store
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
            for collector in store.metric_collectors():
                self.registry.register(collector)

    def exposition(self) -> bytes:
        """The text format of every metric, across workers when there are several."""
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(self._store_collector)
        # Cache counters are in the multiprocess files; its gauges are not.
        for collector in self._store.metric_collectors(include_counters=False):
            registry.register(collector)
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
    """Counts every request an app answers, errors included."""

    def __init__(self, metrics: Metrics, default_route: str = "unmatched") -> None:
        self._metrics = metrics
        self._default_route = default_route

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
        # An app without URI templates (the S3 sink) names the route itself.
        route = (
            getattr(req.context, "metrics_route", None)
            or req.uri_template
            or self._default_route
        )
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
