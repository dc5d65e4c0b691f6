"""The read cache's counters, and their optional Prometheus export.

:class:`Counters` are plain integers behind a lock; ``CacheBackend.stats()``
reports them under ``"cache"``. If ``prometheus_client`` is importable, every
live cache is also exported through one custom collector registered in the
default registry (labelled by cache path, so several caches in one process do
not clash)::

    blobstore_cache_hits_total{path="/var/cache/blobstore"} 1234

A custom collector reads the counters when scraped; nothing is duplicated.

Under gunicorn each worker has its own counters. When ``prometheus_client``
runs in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, which ``blobstore
serve`` sets), every increment also goes to a multiprocess ``Counter``, whose
per-worker files the service's ``MultiProcessCollector`` sums; the service
then takes only the gauges from :func:`collector` (``include_counters=False``).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any
from typing import Protocol

__all__ = ["COUNTERS", "Counters", "collector", "register"]

#: Counter name → help text. Every one only goes up.
COUNTERS = {
    "hits": "Opens served from a committed cache copy.",
    "misses": "Opens not served from a committed cache copy.",
    "prefetches": "Background fills started by a prefetch hint.",
    "cache_bytes": "Bytes served to readers from local cache files.",
    "remote_bytes": "Bytes read from the remote backend (fills and readers).",
    "fills": "Copies committed to the cache (reads and puts).",
    "fill_errors": "Fills abandoned (remote error, bad content, local disk).",
    "corrupt": "Cache copies found damaged on disk and dropped.",
    "evictions": "Copies evicted to stay under the size limits.",
    "evicted_bytes": "Bytes evicted to stay under the size limits.",
}


class Counters:
    """Thread-safe monotonically increasing counters (see :data:`COUNTERS`)."""

    def __init__(self, path: str = "") -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(COUNTERS, 0)
        self._path = path
        self._shared = _multiprocess_counters()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._values[name] += n
        if self._shared is not None:
            self._shared[name].labels(self._path).inc(n)

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._values[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)


_shared_counters: dict[str, Any] | None = None


def _multiprocess_counters() -> dict[str, Any] | None:
    """Prometheus counters that sum across processes, when prometheus_client
    is in multiprocess mode (else None: the collector reads the counters)."""
    global _shared_counters
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    try:
        from prometheus_client import Counter
    except ImportError:
        return None
    with _register_lock:
        if _shared_counters is None:
            # registry=None: the values live in the multiprocess files, which
            # the service's MultiProcessCollector reads; no registry needed.
            _shared_counters = {
                name: Counter(f"blobstore_cache_{name}", doc, ["path"], registry=None)
                for name, doc in COUNTERS.items()
            }
    return _shared_counters


class _Source(Protocol):
    def cache_stats(self) -> dict[str, Any]: ...

    @property
    def path(self) -> str: ...


_live: weakref.WeakSet = weakref.WeakSet()
_registered = False
_register_lock = threading.Lock()


def register(cache: _Source) -> None:
    """Export *cache*'s figures to Prometheus, if ``prometheus_client`` is
    installed (a no-op otherwise). Dead caches drop out by themselves."""
    global _registered
    try:
        from prometheus_client import REGISTRY
    except ImportError:
        return
    with _register_lock:
        _live.add(cache)
        if not _registered:
            REGISTRY.register(_Collector())
            _registered = True


def unregister(cache: _Source) -> None:
    with _register_lock:
        _live.discard(cache)


_GAUGES = {
    "size_bytes": "Bytes of content in the cache (last scan plus changes).",
    "entries": "Copies in the cache (last scan plus changes).",
    "max_size_bytes": "The configured max_size.",
}


def collector(*, include_counters: bool = True) -> Any:
    """A collector of every live cache's figures, for a registry of one's own
    (the service's). Without counters: only the gauges (the counters then
    come from the multiprocess files)."""
    return _Collector(include_counters)


class _Collector:
    """Reads every live cache's figures when Prometheus scrapes."""

    def __init__(self, include_counters: bool = True) -> None:
        self._include_counters = include_counters

    def describe(self):
        # Without describe(), registering would call collect() (and take
        # the lock register() holds).
        return self._families([])

    def collect(self):
        with _register_lock:
            caches = list(_live)
        return self._families([(c.path, c.cache_stats()) for c in caches])

    def _families(self, figures: list[tuple[str, dict[str, Any]]]) -> list:
        from prometheus_client.core import CounterMetricFamily
        from prometheus_client.core import GaugeMetricFamily

        families = []
        kinds = [(GaugeMetricFamily, _GAUGES)]
        if self._include_counters:
            kinds.insert(0, (CounterMetricFamily, COUNTERS))
        for kind, specs in kinds:
            for name, doc in specs.items():
                family = kind(f"blobstore_cache_{name}", doc, labels=["path"])
                for path, stats in figures:
                    family.add_metric([path], stats[name])
                families.append(family)
        return families
