"""Probes and figures: ``/healthz`` (the process answers), ``/readyz`` (the
catalog and the backend answer too), ``/v1/stats`` (what the store holds)."""

from __future__ import annotations

import falcon

from blobstore import Store

__all__ = ["Health", "Ready", "Stats"]


class Health:
    """``GET /healthz``: liveness; touches nothing but the process."""

    access = None  # public: load balancers and orchestrators probe it

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class Ready:
    """``GET /readyz``: 200 when the catalog and the backend can be reached,
    503 (``unavailable``) when not."""

    access = None

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._store.check()
        resp.media = {"status": "ready"}


class Stats:
    """``GET /v1/stats``: blob counts and bytes, plus the backend's figures
    (capacity, drives), which is operator information: admin access."""

    access = {"GET": "admin"}

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        totals = self._store.stats()
        resp.media = {
            "blobs": totals.blobs,
            "bytes": totals.bytes,
            "composites": totals.composites,
            "backend": self._store.backend_stats(),
        }
