"""Putting one object into Swift straight from a stream.

Nothing is buffered beyond one chunk. Three shapes, chosen by what the first
:data:`BUFFER` bytes (or ``segment_size``, if smaller) show:

* **Small** (the whole stream fits in the first chunk): read it all, which
  also lets the Store's :class:`~blobstore.hashing.VerifyingReader` check the
  hash before a byte is sent, then PUT it with its MD5 as ``ETag`` (Swift
  verifies it). The bytes are in memory, so swiftclient may retry the PUT
  (backoff on 5xx and resets, one re-auth on 401).
* **Streamed** (bigger, and the declared size fits in one segment): one PUT
  with chunked transfer encoding whose body is read from the stream as it is
  sent. The stream raises from ``read()`` when the content turns out wrong
  (the verifying reader checks at EOF); that happens *before* the final
  zero-length chunk goes out, the request is abandoned mid-body, and Swift
  discards it (499) without ever committing the object.
* **Static Large Object** (the size is above the segment size, or unknown):
  segments of ``segment_size`` bytes go to the segments container under
  ``<name>/<put id>/<index>``, each streamed the same way, then the manifest
  goes under ``<name>``. A blob of unknown size is always written this way,
  because which shape it needs is only known once it has been read.

A streamed body cannot be sent twice, so streamed PUTs are not retried; the
token is checked (and renewed) with a cheap HEAD just before, so an expired
token does not cost the upload. Each streamed PUT's ``ETag`` is compared with
the MD5 of what was sent. Whatever fails, everything this put wrote (object,
manifest, segments) is removed before the error propagates; an error raised
by the stream itself propagates unchanged.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import uuid
from collections.abc import Iterator
from urllib.parse import quote

from blobstore.backends.swift.pool import SWIFT_ERRORS
from blobstore.backends.swift.pool import ConnectionPool
from blobstore.backends.swift.pool import delete_object
from blobstore.backends.swift.pool import translate
from blobstore.errors import BadParams
from blobstore.errors import Unavailable
from blobstore.hashing import CHUNK_SIZE
from blobstore.hashing import Readable

__all__ = ["BUFFER", "Uploader"]

log = logging.getLogger(__name__)

#: Streams no longer than this are read whole before anything is sent.
BUFFER = CHUNK_SIZE
CONTENT_TYPE = "application/octet-stream"


class _Source:
    """The caller's stream, remembering whether it ended and whether it
    raised (so its own exception can be told apart from Swift's and
    re-raised unchanged), with room to push back bytes read ahead."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self._pushback = b""
        self.eof = False
        self.error: BaseException | None = None

    def read(self, n: int) -> bytes:
        if self._pushback:
            chunk, self._pushback = self._pushback[:n], self._pushback[n:]
            return chunk
        if self.eof:
            return b""
        try:
            chunk = self._stream.read(n)
        except BaseException as exc:
            self.error = exc
            raise
        if not chunk:
            self.eof = True
        return chunk

    def read_prefix(self, limit: int) -> bytes:
        """Up to *limit* bytes: fewer only if the stream ended."""
        parts = []
        got = 0
        while got < limit:
            chunk = self.read(limit - got)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def unread(self, data: bytes) -> None:
        self._pushback = data + self._pushback


class _Body:
    """One request body: the source's bytes, at most *limit* of them (all of
    them when None), counted and MD5-summed as they are sent."""

    def __init__(self, source: _Source, limit: int | None) -> None:
        self._source = source
        self._limit = limit
        self.sent = 0
        self._md5 = hashlib.md5(usedforsecurity=False)

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()

    def __iter__(self) -> Iterator[bytes]:
        while self._limit is None or self.sent < self._limit:
            want = CHUNK_SIZE
            if self._limit is not None:
                want = min(want, self._limit - self.sent)
            chunk = self._source.read(want)
            if not chunk:
                return
            self._md5.update(chunk)
            self.sent += len(chunk)
            yield chunk


class Uploader:
    """Writes objects into *container*, large ones as SLOs whose segments go
    into *segments*."""

    def __init__(
        self,
        pool: ConnectionPool,
        container: str,
        segments: str,
        segment_size: int,
    ) -> None:
        self._pool = pool
        self._container = container
        self._segments = segments
        self.segment_size = segment_size
        #: Swift's ``slo.max_manifest_segments`` (learnt from /info at start).
        self.max_segments = 1000

    def put(self, name: str, stream: Readable, size: int | None) -> None:
        source = _Source(stream)
        written: list[tuple[str, str]] = []  # (container, object) to undo
        try:
            small = min(BUFFER, self.segment_size)
            first = source.read_prefix(small + 1)
            if source.eof and len(first) <= small:
                self._put_small(name, first, written)
                return
            source.unread(first)
            self._check_token()
            if size is not None and size <= self.segment_size:
                self._put_streamed(name, source, written)
            else:
                self._put_slo(name, source, size, written)
        except BaseException as exc:
            self._undo(written)
            if source.error is not None:
                # The stream's own failure (a wrong hash, a client that went
                # away): the caller gets it exactly as the stream raised it.
                raise source.error from None
            if isinstance(exc, SWIFT_ERRORS):
                raise translate(exc, f"put object {self._where(name)}") from exc
            raise

    # -- the three shapes --------------------------------------------------------

    def _put_small(self, name: str, data: bytes, written: list) -> None:
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        written.append((self._container, name))
        with self._pool.connection() as conn:
            # A BytesIO (seekable) lets swiftclient rewind it to retry.
            conn.put_object(
                self._container,
                name,
                io.BytesIO(data),
                content_length=len(data),
                etag=md5,
                content_type=CONTENT_TYPE,
            )

    def _put_streamed(self, name: str, source: _Source, written: list) -> None:
        written.append((self._container, name))
        self._stream_object(self._container, name, _Body(source, None))

    def _put_slo(
        self, name: str, source: _Source, size: int | None, written: list
    ) -> None:
        if size is not None and -(-size // self.segment_size) > self.max_segments:
            raise BadParams(self._too_large(name))
        put_id = uuid.uuid4().hex[:12]
        manifest = []
        while True:
            # Peek before opening a segment: a stream that ends exactly at a
            # segment boundary must not leave an empty last segment (and the
            # read that meets the end is the one that verifies the content).
            first = source.read(min(CHUNK_SIZE, self.segment_size))
            if not first:
                break
            source.unread(first)
            if len(manifest) >= self.max_segments:
                raise BadParams(self._too_large(name))
            segment = f"{name}/{put_id}/{len(manifest):08d}"
            written.append((self._segments, segment))
            body = _Body(source, self.segment_size)
            etag = self._stream_object(self._segments, segment, body)
            manifest.append(
                {
                    "path": f"/{quote(self._segments)}/{quote(segment)}",
                    "etag": etag,
                    "size_bytes": body.sent,
                }
            )
            if source.eof:
                break
        data = json.dumps(manifest).encode()
        written.insert(0, (self._container, name))
        with self._pool.connection() as conn:
            conn.put_object(
                self._container,
                name,
                io.BytesIO(data),
                content_length=len(data),
                content_type=CONTENT_TYPE,
                query_string="multipart-manifest=put",
            )

    # -- helpers -------------------------------------------------------------------

    def _stream_object(self, container: str, obj: str, body: _Body) -> str:
        """PUT *body* with chunked transfer, no retries; return its ETag."""
        with self._pool.connection(retries=0) as conn:
            etag = conn.put_object(container, obj, body, content_type=CONTENT_TYPE)
        if etag != body.md5:
            raise Unavailable(
                f"Swift stored {self._where(obj, container)} with MD5 {etag}, but "
                f"{body.md5} was sent: the data was damaged on the way"
            )
        return etag

    def _check_token(self) -> None:
        """Renew the token now if it has expired (a streamed PUT cannot be
        replayed after a 401); also fails fast when Swift is down."""
        with self._pool.connection() as conn:
            conn.head_container(self._container)

    def _undo(self, written: list[tuple[str, str]]) -> None:
        """Best-effort removal of what a failed put wrote. No retries: Swift
        may be what failed; the orphan sweep collects what is left."""
        if not written:
            return
        try:
            with self._pool.connection(retries=0) as conn:
                for container, obj in written:
                    delete_object(conn, container, obj)
        except SWIFT_ERRORS as exc:
            what = f"remove what a failed put wrote to {self._where(written[0][1])}"
            log.warning("%s (the orphan sweep will)", translate(exc, what))

    def _where(self, obj: str, container: str | None = None) -> str:
        return f"'{container or self._container}/{obj}'"

    def _too_large(self, name: str) -> str:
        limit = self.segment_size * self.max_segments
        return (
            f"blob for {self._where(name)} is larger than this Swift backend can "
            f"store ({self.max_segments} segments of {self.segment_size} bytes = "
            f"{limit} bytes); raise backend.segment_size"
        )
