"""The WSGI application: the native API and, when enabled, the S3 façade.

::

    from blobstore.config import build_store, load_settings
    from blobstore_api.app import create_app

    settings = load_settings()
    application = create_app(build_store(settings), settings)

With ``[s3] enabled = true`` one listener serves both. A request goes to S3
when it carries AWS credentials (a SigV4 ``Authorization`` header, or a
presigned URL's ``X-Amz-Algorithm``); otherwise ``/v1/...``, ``/healthz``,
``/readyz`` and ``/metrics`` are native and every other path is S3's (which
refuses anonymous requests in S3's own XML). Without S3, other paths are a
native 404.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

import falcon

from blobstore import Store
from blobstore.config import Settings
from blobstore.config import build_store
from blobstore.errors import ConfigError
from blobstore_api.auth import AuthMiddleware
from blobstore_api.dispatch import serves_s3
from blobstore_api.errors import install_error_handlers
from blobstore_api.metrics import Metrics
from blobstore_api.metrics import MetricsMiddleware
from blobstore_api.native import add_routes

__all__ = [
    "Dispatcher",
    "build_application",
    "close_stores",
    "create_app",
    "create_native_app",
]

log = logging.getLogger("blobstore.serve")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def create_native_app(
    store: Store, settings: Settings, metrics: Metrics | None = None
) -> falcon.App:
    """The native API alone, as a Falcon app."""
    metrics = metrics or Metrics(store)
    app = falcon.App(
        middleware=[MetricsMiddleware(metrics), AuthMiddleware(settings.auth.tokens)]
    )
    # Query values like "a,b" are one value, never split into a list.
    app.req_options.auto_parse_qs_csv = False
    install_error_handlers(app)
    add_routes(app, store, settings, metrics)
    return app


class Dispatcher:
    """Routes each request to the native app or the S3 app
    (:func:`~blobstore_api.dispatch.serves_s3`)."""

    def __init__(self, native: WSGIApp, s3: WSGIApp) -> None:
        self.native = native
        self.s3 = s3

    def route(self, environ: dict[str, Any]) -> WSGIApp:
        return self.s3 if serves_s3(environ) else self.native

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        # The chosen app's iterable is returned untouched, so the server
        # still recognises its wsgi.file_wrapper (sendfile).
        return self.route(environ)(environ, start_response)


def create_app(store: Store, settings: Settings) -> WSGIApp:
    """The service's WSGI application for *store*, configured by *settings*.

    :raises ConfigError: S3 is enabled but the façade is not installed, or
        its ``[s3]`` table is wrong.
    """
    metrics = Metrics(store)
    native = create_native_app(store, settings, metrics)
    if not settings.s3_enabled:
        return native
    try:
        from blobstore_api.s3 import create_s3_app
    except ImportError as exc:
        raise ConfigError(
            f"[s3] enabled = true, but the S3 façade cannot be loaded: {exc}"
        ) from None
    try:
        s3 = create_s3_app(store, settings.s3, metrics=metrics)
    except ValueError as exc:  # the [s3] table, checked by the façade
        raise ConfigError(str(exc)) from None
    return Dispatcher(native, s3)


_stores: list[Store] = []
_stores_lock = threading.Lock()


def build_application(settings: Settings) -> WSGIApp:
    """The application for *settings* with a store of its own (each server
    worker calls this once, after fork). :func:`close_stores` closes them."""
    store = build_store(settings)
    try:
        app = create_app(store, settings)
    except BaseException:
        store.close()
        raise
    with _stores_lock:
        _stores.append(store)
    log.info(
        "serving the %s catalog and the %s backend (config: %s)",
        settings.catalog.get("type"),
        settings.backend.get("type"),
        settings.source,
    )
    return app


def close_stores() -> None:
    """Close the stores :func:`build_application` made (a worker exiting)."""
    with _stores_lock:
        stores, _stores[:] = list(_stores), []
    for store in stores:
        store.close()
