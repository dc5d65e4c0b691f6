"""The S3 façade's WSGI application: ``create_s3_app(store, config)``.

One Falcon sink owns every path (``/``, ``/{bucket}``, ``/{bucket}/{key...}``)
so keys may hold ``/``, ``%2F``, spaces or any UTF-8. Each request is:

1. given a request id (``x-amz-request-id`` on every response, errors too);
2. authenticated (:mod:`.sigv4`) — there is no anonymous access;
3. routed by method, target and sub-resource (:mod:`.routes`) to a handler,
   which calls only :class:`~blobstore.s3.objects.ObjectStore` (and through it
   the Store).

Errors are raised, never caught in handlers: :mod:`.errors` renders them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any

import falcon

from blobstore.s3.objects import ObjectStore
from blobstore.store import Store
from blobstore_api.metrics import Metrics
from blobstore_api.metrics import MetricsMiddleware
from blobstore_api.s3 import routes
from blobstore_api.s3.context import Context
from blobstore_api.s3.context import S3Config
from blobstore_api.s3.context import parse_target
from blobstore_api.s3.context import request_headers
from blobstore_api.s3.errors import register_error_handlers
from blobstore_api.s3.sigv4 import HttpRequest
from blobstore_api.s3.sigv4 import Verifier

__all__ = ["create_s3_app"]

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class RequestIds:
    """Middleware: a fresh id per request, sent back on every response."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.request_id = secrets.token_hex(8).upper()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool
    ) -> None:
        request_id = req.context.get("request_id", "")
        resp.set_header("x-amz-request-id", request_id)
        resp.set_header("x-amz-id-2", request_id)


class S3Service:
    """Authenticates and dispatches every request (the app's only sink)."""

    def __init__(self, objects: ObjectStore, config: S3Config, clock: Clock) -> None:
        self.objects = objects
        self.config = config
        self.verifier = Verifier(config.credentials, config.region)
        self._clock = clock

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
        target = parse_target(req.env)
        req.env["blobstore.s3.resource"] = target.path
        identity = self.verifier.verify(
            HttpRequest(
                req.method,
                target.raw_path,
                target.path,
                target.query,
                request_headers(req.env),
            ),
            self._clock(),
        )
        query: dict[str, str] = {}
        for name, value in target.query:
            query.setdefault(name, value)
        handler = routes.select(
            req.method,
            target,
            query,
            copy=req.get_header("x-amz-copy-source") is not None,
        )
        req.context.metrics_route = (
            f"s3:{handler.__module__.rsplit('.', 1)[-1]}.{handler.__name__}"
        )
        handler(Context(self.objects, self.config, identity, target, query), req, resp)


def create_s3_app(
    store: Store,
    config: Mapping[str, Any],
    *,
    clock: Clock = _now,
    metrics: Metrics | None = None,
) -> falcon.App:
    """The S3 façade over *store*, configured by the raw ``[s3]`` table (see
    :class:`~blobstore_api.s3.context.S3Config`).

    :param clock: the current time (tests move it to check expiry rules).
    :param metrics: the service's metrics, to count S3 requests too.
    :raises ValueError: a bad ``[s3]`` setting.
    """
    settings = S3Config.from_mapping(config)
    objects = ObjectStore(store, multipart_expiry=settings.multipart_expiry)
    middleware: list[Any] = [RequestIds()]
    if metrics is not None:  # counted with the native API's requests
        middleware.insert(0, MetricsMiddleware(metrics, default_route="s3"))
    app = falcon.App(middleware=middleware, media_type="application/xml")
    register_error_handlers(app)
    app.add_sink(S3Service(objects, settings, clock))
    return app
