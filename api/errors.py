"""Errors as HTTP responses: one handler per domain error class.

Resources never catch domain errors; they raise through to here, where each
class of :mod:`blobstore.errors` maps to one status. Every error body,
domain or HTTP, has the same JSON shape::

    {"code": "blob_not_found", "message": "blob 38b0... not found"}

``code`` is the error class's stable ``code`` (or, for HTTP-level errors
such as 411 or 416, a name derived from the status).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import falcon

from blobstore import errors

__all__ = ["install_error_handlers", "serialize_http_error"]

log = logging.getLogger(__name__)

#: Domain error class -> HTTP status. Falcon picks the most specific handler
#: by MRO, so subclasses (HashMismatch, UploadNotFound, ...) follow their base.
STATUS_BY_ERROR: dict[type[errors.BlobStoreError], str] = {
    errors.BlobStoreError: falcon.HTTP_500,
    errors.NotFound: falcon.HTTP_404,
    errors.BadParams: falcon.HTTP_400,
    errors.Conflict: falcon.HTTP_409,
    errors.Unavailable: falcon.HTTP_503,
    errors.InsufficientStorage: falcon.HTTP_507,
    errors.AccessDenied: falcon.HTTP_403,
    errors.Corrupt: falcon.HTTP_500,
}

#: How long a client should wait before retrying a 503.
RETRY_AFTER_SECONDS = 5


def _body(code: str, message: str) -> str:
    return json.dumps({"code": code, "message": message})


def _domain_handler(status: str):
    def handle(
        req: falcon.Request,
        resp: falcon.Response,
        ex: errors.BlobStoreError,
        params: dict[str, Any],
    ) -> None:
        if status.startswith("5"):
            # Server-side trouble: an operator should see it in the log.
            log.error("%s %s: %s: %s", req.method, req.path, type(ex).__name__, ex)
        resp.status = status
        resp.content_type = falcon.MEDIA_JSON
        resp.text = _body(ex.code, str(ex))
        resp.stream = None
        if status == falcon.HTTP_503:
            resp.set_header("Retry-After", str(RETRY_AFTER_SECONDS))

    return handle


def _unexpected(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    log.exception("%s %s failed", req.method, req.path)
    resp.status = falcon.HTTP_500
    resp.content_type = falcon.MEDIA_JSON
    resp.text = _body("internal_error", "internal server error")
    resp.stream = None


def _status_code(error: falcon.HTTPError) -> str:
    """``"411 Length Required"`` -> ``"length_required"``."""
    title = falcon.code_to_http_status(error.status).split(" ", 1)[-1]
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


def serialize_http_error(
    req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError
) -> None:
    """Render Falcon's own HTTP errors (404 route, 405, 411, 416, ...) in the
    same ``{"code", "message"}`` shape as domain errors."""
    code = error.code if isinstance(error.code, str) else _status_code(error)
    reason = code.replace("_", " ")
    message = error.description or f"{reason}: {req.method} {req.path}"
    resp.content_type = falcon.MEDIA_JSON
    resp.text = _body(code, message)


def install_error_handlers(app: falcon.App) -> None:
    """Register the handlers and the serializer on *app*."""
    app.add_error_handler(Exception, _unexpected)
    for error_class, status in STATUS_BY_ERROR.items():
        app.add_error_handler(error_class, _domain_handler(status))
    app.set_error_serializer(serialize_http_error)
