"""Request bodies as verified streams.

:func:`open_body` stacks readers over the body as it arrives, according to
how the request was signed and which integrity headers it carries:

1. transport: ``Content-Length`` bytes, or HTTP chunked transfer encoding
   read to its end;
2. the payload: a signed SHA-256 (``x-amz-content-sha256``) checked at the
   end, ``UNSIGNED-PAYLOAD`` as is, or ``aws-chunked`` decoded with its chunk
   signatures checked (:mod:`.chunked`);
3. ``Content-MD5`` and ``x-amz-checksum-*`` (headers, or trailers of an
   ``aws-chunked`` body) checked at the end.

Every check raises from ``read()`` when the stream ends, *before* the Store
sees end-of-stream, so a body that fails any of them is never stored. Memory
stays bounded: each layer passes the caller's buffer through.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

import falcon

from blobstore.hashing import Readable
from blobstore_api.s3 import checksums
from blobstore_api.s3.chunked import AwsChunkedReader
from blobstore_api.s3.errors import BadDigest
from blobstore_api.s3.errors import InvalidArgument
from blobstore_api.s3.errors import InvalidDigest
from blobstore_api.s3.errors import InvalidRequest
from blobstore_api.s3.errors import MissingContentLength
from blobstore_api.s3.errors import S3Error
from blobstore_api.s3.errors import XAmzContentSHA256Mismatch
from blobstore_api.s3.sigv4 import STREAMING_PAYLOADS
from blobstore_api.s3.sigv4 import STREAMING_SIGNED_TRAILER
from blobstore_api.s3.sigv4 import STREAMING_UNSIGNED_TRAILER
from blobstore_api.s3.sigv4 import UNSIGNED_PAYLOAD
from blobstore_api.s3.sigv4 import Identity
from blobstore_api.streaming import RequestBody
from blobstore_api.streaming import SocketBody

__all__ = ["Body", "DigestReader", "open_body"]

_CHECKSUM_PREFIX = "x-amz-checksum-"
# x-amz-checksum-* headers that are not checksums.
_NOT_CHECKSUMS = {"algorithm", "mode", "type"}


class DigestReader(io.RawIOBase):
    """Passes *stream* through *digest*; at its end, compares the digest with
    *expected* (bytes, or a callable giving them then) and raises *error()*
    on a difference."""

    def __init__(
        self,
        stream: Readable,
        digest: checksums.Digest,
        expected: bytes | Callable[[], bytes | None],
        error: Callable[[], S3Error],
    ) -> None:
        super().__init__()
        self._stream = stream
        self._readinto = getattr(stream, "readinto", None)
        self._digest = digest
        self._expected = expected
        self._error = error
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._readinto is not None:
            n = self._readinto(view) or 0
        else:
            data = self._stream.read(len(view))
            n = len(data)
            view[:n] = data
        if n:
            self._digest.update(view[:n])
        elif len(view) and not self._checked:
            self._check()
        return n

    def _check(self) -> None:
        expected = self._expected() if callable(self._expected) else self._expected
        if expected is not None and not hmac.compare_digest(
            expected, self._digest.digest()
        ):
            raise self._error()
        self._checked = True


@dataclass
class Body:
    """A request body ready to stream: ``size`` is its decoded length (None
    when only the end of the stream tells), ``sized`` whether the client
    framed it at all (Content-Length or chunked transfer encoding)."""

    stream: Readable
    size: int | None
    sized: bool
    _checksums: dict[str, str | Callable[[], str | None]] = field(default_factory=dict)

    def require_length(self) -> None:
        if not self.sized:
            raise MissingContentLength()

    def checksums(self) -> dict[str, str]:
        """``x-amz-checksum-*`` header → the (verified) value the client sent;
        call after the body was read."""
        out = {}
        for name, value in self._checksums.items():
            text = value() if callable(value) else value
            if text:
                out[name] = text
        return out

    def read_all(self, limit: int, too_big: Callable[[], S3Error]) -> bytes:
        """The whole (small) body; *too_big()* is raised past *limit* bytes."""
        chunks = []
        total = 0
        while True:
            data = self.stream.read(min(65536, limit + 1 - total))
            if not data:
                return b"".join(chunks)
            total += len(data)
            if total > limit:
                raise too_big()
            chunks.append(data)


def _int_header(req: falcon.Request, name: str) -> int | None:
    value = req.get_header(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise InvalidArgument(f"{name} must be an integer, not {value!r}") from None
    if number < 0:
        raise InvalidArgument(f"{name} must not be negative")
    return number


def _transport(req: falcon.Request) -> tuple[Readable, int | None, bool]:
    # RequestBody turns a body that cannot be read (the client went away)
    # into a 400, and one that stalls past [server] body_timeout into
    # RequestTimeout; the size limits are the library's (MAX_PUT_SIZE, parts).
    # It counts what arrived, for blobstore_http_received_bytes_total.
    length = req.content_length
    if length is not None:
        # Under gunicorn, straight from the socket (see SocketBody).
        direct = SocketBody.of(req.env)
        body = RequestBody(req.bounded_stream, length, direct)
        req.context.body = body
        return body, length, True
    encoding = req.get_header("Transfer-Encoding", default="").lower()
    if "chunked" in encoding:
        # The WSGI server removed the chunked framing; its input ends where
        # the body does (``wsgi.input_terminated``).
        body = req.context.body = RequestBody(req.stream, sys.maxsize)
        return body, None, True
    return io.BytesIO(b""), 0, False


def open_body(req: falcon.Request, identity: Identity) -> Body:
    """The request body as a verified stream (see the module docstring)."""
    stream, size, sized = _transport(req)
    payload = identity.payload_hash
    chunked: AwsChunkedReader | None = None
    if payload in STREAMING_PAYLOADS:
        decoded = _int_header(req, "x-amz-decoded-content-length")
        if decoded is None:
            raise MissingContentLength(
                "aws-chunked bodies need the x-amz-decoded-content-length header"
            )
        trailer = payload in (STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)
        chunked = AwsChunkedReader(
            stream, decoded, identity.chunk_signer, trailer=trailer
        )
        stream, size, sized = chunked, decoded, True
    elif payload != UNSIGNED_PAYLOAD:
        stream = DigestReader(
            stream,
            hashlib.sha256(),
            bytes.fromhex(payload),
            lambda: XAmzContentSHA256Mismatch(ClientComputedContentSHA256=payload),
        )
    body = Body(stream, size, sized)
    _add_md5(req, body)
    _add_checksum_headers(req, body)
    if chunked is not None:
        _add_checksum_trailers(req, body, chunked)
    return body


def _add_md5(req: falcon.Request, body: Body) -> None:
    value = req.get_header("Content-MD5")
    if value is None:
        return
    expected = checksums.decode_b64(value, 16)
    if expected is None:
        raise InvalidDigest()
    body.stream = DigestReader(
        body.stream,
        hashlib.md5(usedforsecurity=False),
        expected,
        lambda: BadDigest(
            "The Content-MD5 you specified did not match what we received."
        ),
    )


def _mismatch(name: str) -> Callable[[], S3Error]:
    return lambda: BadDigest(
        f"The {name.upper()} you specified did not match the calculated checksum."
    )


def _add_checksum_headers(req: falcon.Request, body: Body) -> None:
    names = [
        n.lower()
        for n in req.headers
        if n.lower().startswith(_CHECKSUM_PREFIX)
        and n.lower()[len(_CHECKSUM_PREFIX) :] not in _NOT_CHECKSUMS
    ]
    if len(names) > 1:
        raise InvalidRequest(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types "
            "are not allowed."
        )
    for header in names:
        name = header[len(_CHECKSUM_PREFIX) :]
        value = req.get_header(header) or ""
        known = checksums.algorithm(name)
        if known is None:
            if name not in checksums.UNVERIFIED:
                raise InvalidRequest(f"Unsupported checksum algorithm {name!r}")
            continue
        factory, size = known
        expected = checksums.decode_b64(value, size)
        if expected is None:
            raise InvalidRequest(f"Value for {header} header is invalid.")
        body.stream = DigestReader(body.stream, factory(), expected, _mismatch(name))
        body._checksums[header] = value


def _add_checksum_trailers(
    req: falcon.Request, body: Body, chunked: AwsChunkedReader
) -> None:
    declared = req.get_header("x-amz-trailer")
    if not declared:
        return
    for header in (h.strip().lower() for h in declared.split(",")):
        if not header.startswith(_CHECKSUM_PREFIX):
            continue
        name = header[len(_CHECKSUM_PREFIX) :]
        known = checksums.algorithm(name)
        if known is None:
            if name not in checksums.UNVERIFIED:
                raise InvalidRequest(f"Unsupported checksum algorithm {name!r}")
            continue
        factory, size = known

        def expected(header: str = header, size: int = size) -> bytes:
            value = chunked.trailers.get(header)
            if value is None:
                raise InvalidRequest(f"The trailing header {header} is missing")
            raw = checksums.decode_b64(value, size)
            if raw is None:
                raise InvalidRequest(f"Value for {header} trailing header is invalid.")
            return raw

        body.stream = DigestReader(body.stream, factory(), expected, _mismatch(name))
        body._checksums[header] = lambda header=header: chunked.trailers.get(header)
