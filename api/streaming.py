"""Bodies in both directions, in bounded chunks (ranges: :mod:`blobstore_api.ranges`).

Requests: :func:`request_body` gives the Store a reader of the request body
that stops at ``Content-Length`` (or at the end of a chunked body, which the
WSGI server decodes), enforces ``[server] max_body_size``, and turns a body
that cannot be read (the client went away, broken chunking) into a
:class:`~blobstore.errors.BadParams`, and one that stalls past ``[server]
body_timeout`` into a 408 -- the Store's verifying reader turns a
body that merely ends early into a ``SizeMismatch``. Either way the Store
raises before the backend commits, so nothing is stored.

Under gunicorn, a body with a ``Content-Length`` is read by
:class:`SocketBody` straight from the connection's socket into the caller's
buffer (``recv_into``), once the few bytes gunicorn already buffered are
taken. gunicorn's own body reader passes each byte through three buffers
(``Unreader``, ``LengthReader``, ``Body``) and several slices before it is
returned, which cost about as much CPU as hashing it; the direct read costs
one copy out of the kernel (measured on a 1 GiB native PUT: 5.2 CPU seconds
per GiB with gunicorn's reader, 4.3 with this one). It depends on gunicorn
internals, so setup.cfg pins gunicorn's major version, and
tests/api/test_socket_body.py runs both this path and the generic one over
gunicorn's real parser. gunicorn's count of the bytes left is kept
exact, so a keep-alive connection continues at the next request as before;
anything other than gunicorn's plain HTTP/1 length-delimited body takes the
generic path.

Responses: :func:`response_body` serves ``length`` bytes from ``start`` of
an open blob reader. When the reader is a real regular file, it hands the
server a :class:`FileRange` through ``wsgi.file_wrapper`` so gunicorn can
``sendfile`` it; otherwise it iterates in 1 MiB chunks (never the 8 KiB
blocks Falcon would use for a file-like object).

Why :class:`FileRange` and not the file itself: gunicorn's ``sendfile``
starts at the file descriptor's *OS* position and sends ``Content-Length``
bytes, but its fallback (TLS, ``sendfile = False``) reads the file object
to its end. ``FileRange`` sets the OS position explicitly and reads with
``pread`` within the range, so both paths send exactly the range.
"""

from __future__ import annotations

import io
import os
import socket
import stat
from collections.abc import Iterator
from typing import Any

import falcon

from blobstore.errors import BadParams
from blobstore.errors import BlobStoreError
from blobstore.hashing import CHUNK_SIZE

__all__ = [
    "BodyTimeout",
    "ChunkIterator",
    "FileRange",
    "RequestBody",
    "SocketBody",
    "request_body",
    "response_body",
]


class BodyTimeout(falcon.HTTPError):
    """408: the client stopped sending the body for ``[server] body_timeout``."""

    def __init__(self, description: str) -> None:
        # The connection cannot carry another request: what is left of this
        # body is still on it, unread.
        super().__init__(
            falcon.HTTP_408, description=description, headers={"Connection": "close"}
        )


class SocketBody(io.RawIOBase):
    """The rest of a length-delimited request body, read from gunicorn's
    socket directly (see the module docstring). A raw stream: ``readinto``
    is the fast way to read it.

    Use :meth:`of` to get one for a WSGI environ; it is None for any server
    or body it does not know to be gunicorn's plain length-delimited body.
    """

    def __init__(self, body: Any, sock: socket.socket) -> None:
        super().__init__()
        self._body = body  # gunicorn.http.body.Body
        self._reader = body.reader  # its LengthReader: .length bytes left
        self._unreader = body.reader.unreader  # SocketUnreader: .buf read ahead
        self._sock = sock

    @classmethod
    def of(cls, env: dict[str, Any]) -> SocketBody | None:
        try:
            from gunicorn.http.body import Body
            from gunicorn.http.body import LengthReader
            from gunicorn.http.unreader import SocketUnreader
        except ImportError:
            return None
        body = env.get("wsgi.input")
        sock = env.get("gunicorn.socket")
        # Exact types: a subclass (or a future gunicorn that reshapes these)
        # may keep its state elsewhere, and then the generic path is right.
        if (
            type(body) is not Body
            or type(getattr(body, "reader", None)) is not LengthReader
            or type(getattr(body.reader, "unreader", None)) is not SocketUnreader
            or body.reader.unreader.sock is not sock
            or not isinstance(getattr(body, "buf", None), io.BytesIO)
            or not isinstance(getattr(body.reader.unreader, "buf", None), io.BytesIO)
            or not isinstance(getattr(body.reader, "length", None), int)
        ):
            return None
        return cls(body, sock)

    def _take_buffered(self, view: memoryview) -> int:
        """Copy body bytes gunicorn holds already (they came with the
        headers) into *view*, in stream order; 0 when it holds none.

        ``Body.buf`` comes first and is not counted in ``LengthReader.length``;
        ``Unreader.buf`` is, and may hold more than the body: what the client
        pipelined after it, read along with the headers. Buffers are replaced
        the way gunicorn replaces them itself.
        """
        for owner, counted in ((self._body, False), (self._unreader, True)):
            data = owner.buf.getvalue()
            n = min(len(view), len(data))
            if counted:
                n = min(n, self._reader.length)
            if n <= 0:
                continue
            view[:n] = data[:n]
            owner.buf = io.BytesIO()
            owner.buf.write(data[n:])
            if counted:
                self._reader.length -= n
            return n
        return 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        n = self._take_buffered(view)
        if n:
            return n
        want = min(len(view), self._reader.length)
        if want <= 0:
            return 0
        try:
            n = self._sock.recv_into(view, want)
        except BaseException:
            # As gunicorn does when its reader raises: the connection cannot
            # be reused, since where the next request starts is unknown.
            self._body.failed = True
            raise
        self._reader.length -= n
        return n


class RequestBody(io.RawIOBase):
    """The request body as a stream: counts bytes, enforces a limit, and
    reports unreadable input as a bad request.

    :param stream: the WSGI input (bounded to ``Content-Length`` when known).
    :param limit: the most bytes accepted (``[server] max_body_size``).
    :param direct: the same body as a :class:`SocketBody`, used instead of
        *stream* when given.
    """

    def __init__(
        self, stream: Any, limit: int, direct: SocketBody | None = None
    ) -> None:
        super().__init__()
        self._stream = stream
        self._limit = limit
        self._direct = direct
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = CHUNK_SIZE
        if self._direct is not None:
            buf = bytearray(size)
            n = self.readinto(buf)
            del buf[n:]
            return bytes(buf)
        try:
            data = self._stream.read(size)
        except (BlobStoreError, falcon.HTTPError):
            raise
        except Exception as exc:
            raise self._unreadable(exc) from exc
        self._count(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._direct is None:
            data = self.read(len(view))
            view[: len(data)] = data
            return len(data)
        try:
            n = self._direct.readinto(view)
        except Exception as exc:
            raise self._unreadable(exc) from exc
        self._count(n)
        return n

    def _unreadable(self, exc: Exception) -> Exception:
        # The boundary with the network: whatever the server's reader raises
        # (a reset connection, a bad chunk size) means the body is
        # incomplete, which is the client's problem, not a server error.
        if isinstance(exc, TimeoutError):
            # The socket's [server] body_timeout (blobstore_api.worker).
            return BodyTimeout(
                f"no more of the request body came within the "
                f"timeout, after {self.count} bytes"
            )
        return BadParams(
            f"request body could not be read after {self.count} bytes: "
            f"{type(exc).__name__}: {exc}"
        )

    def _count(self, n: int) -> None:
        self.count += n
        if self.count > self._limit:
            raise falcon.HTTPContentTooLarge(
                description=f"request body larger than {self._limit} bytes"
            )


def request_body(
    req: falcon.Request, limit: int, *, require_length: bool
) -> RequestBody:
    """The body of *req* as a :class:`RequestBody`.

    :param require_length: refuse a body without ``Content-Length`` (411).
    :raises falcon.HTTPContentTooLarge: ``Content-Length`` above *limit*.
    :raises falcon.HTTPLengthRequired: no length where one is required, or a
        chunked body the server cannot delimit.
    """
    length = req.content_length  # raises 400 itself when malformed
    if length is not None:
        if length > limit:
            raise falcon.HTTPContentTooLarge(
                description=f"Content-Length {length} is above the limit of "
                f"{limit} bytes"
            )
        return RequestBody(req.bounded_stream, limit, SocketBody.of(req.env))
    if require_length:
        raise falcon.HTTPLengthRequired(
            description="this request needs a Content-Length header"
        )
    chunked = "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
    if chunked:
        # The server decodes chunked bodies; reading to EOF is safe only if
        # it says the input ends there (PEP 3333 extension; gunicorn does).
        if not req.env.get("wsgi.input_terminated"):
            raise falcon.HTTPLengthRequired(
                description="this server needs a Content-Length header"
            )
        return RequestBody(req.stream, limit)
    return RequestBody(io.BytesIO(b""), limit)  # no length, not chunked: empty


# -- response bodies -------------------------------------------------------------


class ChunkIterator:
    """Iterates *length* bytes of *reader* from its current position in
    chunks of at most :data:`CHUNK_SIZE`; closes the reader when done or
    closed (the WSGI server calls ``close``).

    :param first: bytes already read from the reader, sent first.
    """

    def __init__(self, reader: Any, length: int, first: bytes = b"") -> None:
        self._reader = reader
        self._left = length - len(first)
        self._first = first

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._first:
            chunk, self._first = self._first, b""
            return chunk
        if self._left <= 0:
            self.close()
            raise StopIteration
        chunk = self._reader.read(min(CHUNK_SIZE, self._left))
        if not chunk:
            self.close()
            # Headers (and Content-Length) are gone already: the server can
            # only cut the connection, which tells the client it is short.
            raise OSError(f"blob ended {self._left} bytes early")
        self._left -= len(chunk)
        return chunk

    def close(self) -> None:
        self._reader.close()


class FileRange:
    """A byte range of an open regular file, for ``wsgi.file_wrapper``.

    It exposes the file descriptor (``sendfile`` starts at its OS position,
    which is set here) and a ``read`` limited to the range, using ``pread`` so
    the position the server relies on is never moved by reading.
    """

    def __init__(self, owner: Any, fd: int, start: int, length: int) -> None:
        self._owner = owner  # keeps the descriptor open; closed with us
        self._fd = fd
        self._pos = start
        self._end = start + length
        os.lseek(fd, start, os.SEEK_SET)

    def fileno(self) -> int:
        return self._fd

    def read(self, size: int = -1) -> bytes:
        left = self._end - self._pos
        if size is None or size < 0 or size > left:
            size = left
        if size <= 0:
            return b""
        data = os.pread(self._fd, size, self._pos)
        self._pos += len(data)
        return data

    def close(self) -> None:
        self._owner.close()


def _regular_fd(reader: Any, size: int) -> int | None:
    """The reader's file descriptor if it is a regular file holding exactly
    the blob, else None (memory, composite and remote readers)."""
    try:
        fd = reader.fileno()
        st = os.fstat(fd)
    except (AttributeError, OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size != size:
        return None
    return fd


def response_body(env: dict[str, Any], reader: Any, start: int, length: int) -> Any:
    """The WSGI response iterable for *length* bytes of *reader* from *start*.

    Errors that surface on the first read (a missing part of a composite)
    are raised here, while the status can still say so.
    """
    wrapper = env.get("wsgi.file_wrapper")
    fd = _regular_fd(reader, reader.size) if wrapper is not None else None
    if fd is not None:
        return wrapper(FileRange(reader, fd, start, length), CHUNK_SIZE)
    try:
        if start:
            reader.seek(start)
        first = reader.read(min(CHUNK_SIZE, length)) if length else b""
    except BaseException:
        reader.close()
        raise
    return ChunkIterator(reader, length, first)
