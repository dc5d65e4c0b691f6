"""Which application serves a request, when the S3 façade is on: S3 when it
carries AWS credentials (a SigV4 or SigV2 ``Authorization`` header, or a
presigned URL's ``X-Amz-Algorithm``); otherwise the native API for
``/v1/...``, ``/healthz``, ``/readyz`` and ``/metrics``, S3 for every other
path. Read from the WSGI environ alone, so the worker can use it for
requests it answers itself (:mod:`blobstore_api.worker`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

__all__ = ["NATIVE_PATHS", "NATIVE_PREFIX", "is_s3_signed", "serves_s3"]

NATIVE_PATHS = frozenset({"/v1", "/healthz", "/readyz", "/metrics"})
NATIVE_PREFIX = "/v1/"


def is_s3_signed(environ: dict[str, Any]) -> bool:
    """Whether the request carries AWS credentials (header or presigned URL)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth.startswith(("AWS4-HMAC-SHA256 ", "AWS ")):
        return True
    query = environ.get("QUERY_STRING", "")
    return "X-Amz-Algorithm" in query and "X-Amz-Algorithm" in parse_qs(
        query, keep_blank_values=True
    )


def serves_s3(environ: dict[str, Any]) -> bool:
    """Whether S3 serves the request, when the façade is on (module docs)."""
    if is_s3_signed(environ):
        return True
    path = environ.get("PATH_INFO", "")
    return not (path in NATIVE_PATHS or path.startswith(NATIVE_PREFIX))
