"""Decoding ``aws-chunked`` request bodies, as a stream.

The body is a series of chunks, each ``<hex size>[;chunk-signature=<sig>]\\r\\n
<data>\\r\\n``, ending with a zero-size chunk and, in the trailer variants,
trailing headers (``x-amz-checksum-crc32:...``, and in the signed variant
``x-amz-trailer-signature:...``) and an empty line.

:class:`AwsChunkedReader` yields the decoded data as it arrives, with memory
bounded by its buffer (a chunk's data is never held whole). Each chunk's
signature is checked when the chunk ends; a bad signature, a malformed frame
or a decoded length different from ``x-amz-decoded-content-length`` raises
from ``read()`` before the end of the stream, so the Store discards what it
was writing (its contract: nothing is stored if reading the stream raises).
"""

from __future__ import annotations

import hashlib
import hmac
import io

from blobstore.hashing import Readable
from blobstore_api.s3.errors import IncompleteBody
from blobstore_api.s3.errors import InvalidRequest
from blobstore_api.s3.errors import SignatureDoesNotMatch
from blobstore_api.s3.sigv4 import ChunkSigner

__all__ = ["AwsChunkedReader"]

_MAX_LINE = 4096
_MAX_TRAILERS = 16
_READ_SIZE = 64 * 1024


class AwsChunkedReader(io.RawIOBase):
    """The decoded data of an ``aws-chunked`` body.

    :param stream: the body as received (after any HTTP transfer decoding).
    :param decoded_length: ``x-amz-decoded-content-length``.
    :param signer: checks chunk (and trailer) signatures; None for the
        unsigned variants.
    :param trailer: whether trailing headers follow the last chunk.

    After the end, :attr:`trailers` holds the trailing headers (lowercase names).
    """

    def __init__(
        self,
        stream: Readable,
        decoded_length: int,
        signer: ChunkSigner | None,
        *,
        trailer: bool,
    ) -> None:
        super().__init__()
        self._stream = stream
        self._buffer = bytearray()
        self._decoded_length = decoded_length
        self._signer = signer
        self._trailer = trailer
        self._left_in_chunk = 0
        self._chunk_signature: bytes | None = None
        self._chunk_hash = hashlib.sha256() if signer else None
        self._decoded = 0
        self._done = False
        self.trailers: dict[str, str] = {}

    def readable(self) -> bool:
        return True

    # -- input -----------------------------------------------------------------

    def _fill(self) -> bool:
        data = self._stream.read(_READ_SIZE)
        if not data:
            return False
        self._buffer += data
        return True

    def _line(self) -> bytes | None:
        """The next CRLF-terminated line without its CRLF (None at EOF)."""
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 2]
                return line
            if len(self._buffer) > _MAX_LINE:
                raise InvalidRequest("aws-chunked: a chunk header line is too long")
            if not self._fill():
                if self._buffer:
                    raise IncompleteBody("aws-chunked: the body ends inside a line")
                return None

    # -- decoding --------------------------------------------------------------

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        while not self._done:
            if self._left_in_chunk == 0:
                self._next_chunk()
                continue
            if not self._buffer and not self._fill():
                raise IncompleteBody("aws-chunked: the body ends inside a chunk")
            n = min(len(view), self._left_in_chunk, len(self._buffer))
            view[:n] = self._buffer[:n]
            if self._chunk_hash is not None:
                self._chunk_hash.update(view[:n])
            del self._buffer[:n]
            self._left_in_chunk -= n
            self._decoded += n
            if self._decoded > self._decoded_length:
                raise IncompleteBody(
                    "aws-chunked: more data than x-amz-decoded-content-length"
                )
            if self._left_in_chunk == 0:
                self._end_chunk()
            return n
        return 0

    def _next_chunk(self) -> None:
        line = self._line()
        if line is None:
            raise IncompleteBody("aws-chunked: the body ends before the last chunk")
        size_text, _, extensions = line.partition(b";")
        try:
            size = int(size_text.strip(), 16)
        except ValueError:
            raise InvalidRequest(
                f"aws-chunked: bad chunk size {size_text[:32]!r}"
            ) from None
        if size < 0:
            raise InvalidRequest("aws-chunked: negative chunk size")
        self._chunk_signature = None
        for ext in extensions.split(b";"):
            name, _, value = ext.partition(b"=")
            if name.strip() == b"chunk-signature":
                self._chunk_signature = value.strip()
        if self._signer is not None and self._chunk_signature is None:
            raise SignatureDoesNotMatch("aws-chunked: a chunk has no chunk-signature")
        self._left_in_chunk = size
        if size == 0:
            self._check_chunk_signature()
            self._finish()

    def _end_chunk(self) -> None:
        # Data is followed by CRLF, then the signature over it is checked.
        while len(self._buffer) < 2:
            if not self._fill():
                raise IncompleteBody("aws-chunked: the body ends after chunk data")
        if bytes(self._buffer[:2]) != b"\r\n":
            raise InvalidRequest("aws-chunked: chunk data is not followed by CRLF")
        del self._buffer[:2]
        self._check_chunk_signature()

    def _check_chunk_signature(self) -> None:
        if self._signer is None or self._chunk_hash is None:
            return
        expected = self._signer.chunk(self._chunk_hash.hexdigest())
        self._chunk_hash = hashlib.sha256()
        if not hmac.compare_digest(expected.encode(), self._chunk_signature or b""):
            raise SignatureDoesNotMatch(
                "aws-chunked: a chunk signature does not match its data"
            )

    def _finish(self) -> None:
        if self._trailer:
            self._read_trailers()
        else:
            line = self._line()  # the empty line after the last chunk
            if line:
                raise InvalidRequest("aws-chunked: data after the last chunk")
        if self._decoded != self._decoded_length:
            raise IncompleteBody(
                f"aws-chunked: {self._decoded} bytes decoded, "
                f"x-amz-decoded-content-length says {self._decoded_length}"
            )
        self._done = True

    def _read_trailers(self) -> None:
        signed_lines: list[bytes] = []
        signature = b""
        while True:
            line = self._line()
            if not line:  # the empty line that ends the trailers (or EOF)
                break
            if len(self.trailers) >= _MAX_TRAILERS:
                raise InvalidRequest("aws-chunked: too many trailing headers")
            name_bytes, sep, value_bytes = line.partition(b":")
            if not sep:
                raise InvalidRequest("aws-chunked: malformed trailing header")
            name = name_bytes.strip().lower().decode("ascii", "replace")
            if name == "x-amz-trailer-signature":
                signature = value_bytes.strip()
                continue
            value = value_bytes.strip().decode("ascii", "replace")
            self.trailers[name] = value
            signed_lines.append(f"{name}:{value}\n".encode())
        if self._signer is not None:
            expected = self._signer.trailer(
                hashlib.sha256(b"".join(signed_lines)).hexdigest()
            )
            if not hmac.compare_digest(expected.encode(), signature):
                raise SignatureDoesNotMatch(
                    "aws-chunked: the trailer signature does not match"
                )
