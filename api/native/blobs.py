"""``/v1/blobs``: put blobs (by hash, or hash computed), read them with
ranges and conditional requests.

A blob's ETag is its hash, which never changes for the same URL, so
``If-None-Match`` and ``If-Match`` are exact. ``Last-Modified`` is the blob's
put time: it moves forward when the same content is put again or a new
reference touches it (that is what keeps it from GC), never backward.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import TYPE_CHECKING

import falcon

from blobstore import Store
from blobstore.hashing import check_hash
from blobstore_api.ranges import ByteRange
from blobstore_api.ranges import RangeNotSatisfiable
from blobstore_api.ranges import parse_range
from blobstore_api.streaming import request_body
from blobstore_api.streaming import response_body

if TYPE_CHECKING:  # records are data the Store returns; no catalog calls
    from blobstore.records import BlobRecord

__all__ = ["BlobCollection", "BlobItem"]


class BlobCollection:
    """``POST /v1/blobs``: store a body whose hash the server computes."""

    access = {"POST": "read-write"}

    def __init__(self, store: Store, max_body_size: int) -> None:
        self._store = store
        self._max_body = max_body_size

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.context.body = request_body(
            req, self._max_body, require_length=False
        )
        result = self._store.put(body, size=req.content_length)
        resp.status = falcon.HTTP_201 if result.created else falcon.HTTP_200
        resp.location = f"/v1/blobs/{result.hash}"
        resp.media = {"hash": result.hash, "size": result.size}


def _seconds(t: datetime) -> datetime:
    """HTTP dates have whole seconds: compare at that resolution."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.replace(microsecond=0)


def _http_date(req: falcon.Request, name: str) -> datetime | None:
    """The HTTP-date in header *name*, or None when absent or not a valid
    HTTP-date: RFC 9110 (13.1.3, 13.1.4) has a recipient ignore such an
    ``If-Modified-Since`` or ``If-Unmodified-Since``, not refuse it."""
    header = req.get_header(name)
    if header is None:
        return None
    try:
        return falcon.http_date_to_dt(header.strip())
    except ValueError:
        return None


def _precondition(req: falcon.Request, hash: str, modified: datetime) -> int | None:
    """Evaluate conditional headers in RFC 9110 §13.2.2 order: 412, 304 or None."""
    if_match = req.if_match
    if if_match is not None:
        # Strong comparison: a weak tag never matches If-Match.
        if not any(t == "*" or (t == hash and not t.is_weak) for t in if_match):
            return 412
    else:
        since = _http_date(req, "If-Unmodified-Since")
        if since is not None and modified > _seconds(since):
            return 412
    if_none_match = req.if_none_match
    if if_none_match is not None:
        if any(t == "*" or t == hash for t in if_none_match):
            return 304
    elif req.method in ("GET", "HEAD"):
        since = _http_date(req, "If-Modified-Since")
        if since is not None and modified <= _seconds(since):
            return 304
    return None


def _if_range_holds(req: falcon.Request, hash: str, modified: datetime) -> bool:
    """``If-Range``: send the range only if the entity is still the one the
    client has (else the whole blob)."""
    header = req.get_header("If-Range")
    if header is None:
        return True
    header = header.strip()
    if header.startswith(('"', "W/")):
        return header == f'"{hash}"'
    try:
        return _seconds(falcon.http_date_to_dt(header)) == modified
    except ValueError:
        return False


class BlobItem:
    """``PUT``/``GET``/``HEAD /v1/blobs/{hash}``."""

    access = {"GET": "read", "HEAD": "read", "PUT": "read-write"}

    def __init__(self, store: Store, max_body_size: int) -> None:
        self._store = store
        self._max_body = max_body_size

    def on_put(self, req: falcon.Request, resp: falcon.Response, hash: str) -> None:
        check_hash(hash)  # before reading a byte of the body
        body = req.context.body = request_body(
            req, self._max_body, require_length=False
        )
        result = self._store.put(body, hash, size=req.content_length)
        resp.status = falcon.HTTP_201 if result.created else falcon.HTTP_200
        resp.location = f"/v1/blobs/{result.hash}"
        resp.media = {"hash": result.hash, "size": result.size}

    def on_get(self, req: falcon.Request, resp: falcon.Response, hash: str) -> None:
        self._serve(req, resp, hash, send_body=True)

    def on_head(self, req: falcon.Request, resp: falcon.Response, hash: str) -> None:
        self._serve(req, resp, hash, send_body=False)

    def _serve(
        self, req: falcon.Request, resp: falcon.Response, hash: str, send_body: bool
    ) -> None:
        record = self._store.stat(hash)
        modified = _seconds(record.put_time)
        resp.set_header("ETag", f'"{hash}"')
        resp.last_modified = modified
        resp.accept_ranges = "bytes"
        outcome = _precondition(req, hash, modified)
        if outcome == 412:
            raise falcon.HTTPPreconditionFailed(
                description=f'the blob\'s ETag is "{hash}"'
            )
        if outcome == 304:
            resp.status = falcon.HTTP_304
            return
        byte_range = self._range(req, record, modified)
        resp.content_type = "application/octet-stream"
        if byte_range is None:
            start, length = 0, record.size
        else:
            resp.status = falcon.HTTP_206
            resp.set_header("Content-Range", byte_range.content_range)
            start, length = byte_range.start, byte_range.length
        resp.content_length = length
        if send_body:
            reader = self._store.open(hash)
            resp.stream = response_body(req.env, reader, start, length)

    @staticmethod
    def _range(
        req: falcon.Request, record: BlobRecord, modified: datetime
    ) -> ByteRange | None:
        header = req.get_header("Range")
        if header is None or not _if_range_holds(req, record.hash, modified):
            return None
        try:
            return parse_range(header, record.size)
        except RangeNotSatisfiable:
            raise falcon.HTTPRangeNotSatisfiable(
                record.size,
                description=f"the range {header!r} is outside the blob's "
                f"{record.size} bytes",
            ) from None
