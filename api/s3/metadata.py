"""Object metadata on the wire: what a PUT stores, what a GET/HEAD returns.

Stored with an object: its Content-Type, the standard headers S3 keeps
(:data:`STORED_HEADERS`) and user metadata (``x-amz-meta-*``, at most 2 KB
of names and values together, as in S3). ``aws-chunked`` is a transfer
detail and is removed from Content-Encoding before storing.
"""

from __future__ import annotations

from collections.abc import Mapping

import falcon

from blobstore.records import ObjectRecord
from blobstore.s3.objects import ObjectMeta
from blobstore_api.s3.conditions import http_date
from blobstore_api.s3.errors import MetadataTooLarge

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "RESPONSE_OVERRIDES",
    "STORED_HEADERS",
    "request_meta",
    "set_object_headers",
]

DEFAULT_CONTENT_TYPE = "binary/octet-stream"
STORED_HEADERS = (
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
    "x-amz-website-redirect-location",
)
#: ``response-*`` query parameters of a GET → the header they override.
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
MAX_METADATA_BYTES = 2048
_META_PREFIX = "x-amz-meta-"


def request_meta(req: falcon.Request) -> ObjectMeta:
    """The metadata a PUT, copy (REPLACE) or multipart start asks to store."""
    headers: dict[str, str] = {}
    metadata: dict[str, str] = {}
    for name, value in req.headers.items():
        name = name.lower()
        if name.startswith(_META_PREFIX):
            metadata[name[len(_META_PREFIX) :]] = value
        elif name in STORED_HEADERS:
            headers[name] = value
    encoding = headers.get("content-encoding")
    if encoding is not None:
        kept = [
            e.strip() for e in encoding.split(",") if e.strip().lower() != "aws-chunked"
        ]
        if kept:
            headers["content-encoding"] = ", ".join(kept)
        else:
            del headers["content-encoding"]
    size = sum(
        len(k.encode()) + len(v.encode("latin-1", "replace"))
        for k, v in metadata.items()
    )
    if size > MAX_METADATA_BYTES:
        raise MetadataTooLarge(Size=size, MaxSizeAllowed=MAX_METADATA_BYTES)
    return ObjectMeta(req.content_type or DEFAULT_CONTENT_TYPE, headers, metadata)


def set_object_headers(
    resp: falcon.Response, record: ObjectRecord, overrides: Mapping[str, str] = {}
) -> None:
    """The headers of a GET/HEAD of *record* (before any body headers)."""
    resp.set_header("ETag", f'"{record.etag}"')
    resp.set_header("Last-Modified", http_date(record.mtime))
    resp.set_header("Accept-Ranges", "bytes")
    resp.content_type = record.content_type
    for name, value in record.headers.items():
        resp.set_header(name, value)
    for name, value in record.metadata.items():
        resp.set_header(_META_PREFIX + name, value)
    for param, header in RESPONSE_OVERRIDES.items():
        if param in overrides:
            resp.set_header(header, overrides[param])
