"""A seekable reader of one Swift object, fetched with ranged GETs.

Opening the reader GETs the first window (64 KiB at most): its
``Content-Range`` gives the object's size, so a small blob is read with one
request and no HEAD. A read at position *p* continues the open window when
it is there, else opens a ranged GET for a new window starting at *p*: as big
as that read (at least 64 KiB), doubling while the caller keeps reading
sequentially, up to ``read_ahead`` bytes. A window's body is streamed into
the caller's buffers, never held whole, so a seek followed by a small read
costs one small request, and a sequential read of a huge object costs few
requests and constant memory. A seek elsewhere abandons the window (what is
left of it is read off if that is at most 64 KiB, so the connection can be
reused; otherwise the connection is dropped).

A window holds a pooled connection until it is read to its end or
abandoned. If the connection breaks mid-window, the window is reopened once
at the current position (the GET itself is retried by swiftclient with
backoff); a 404 at any point means the object is gone:
:class:`~blobstore.errors.BlobNotFound`, as the Backend contract asks.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

from swiftclient.client import Connection

from blobstore.backends.swift.pool import SWIFT_ERRORS
from blobstore.backends.swift.pool import ConnectionPool
from blobstore.backends.swift.pool import translate
from blobstore.errors import BlobNotFound
from blobstore.errors import Corrupt
from blobstore.hashing import CHUNK_SIZE
from blobstore.seeking import seek_position

__all__ = ["SwiftReader"]

_FIRST_WINDOW = 64 * 1024
#: An abandoned window with at most this much left is read off, not dropped.
_DRAIN_LIMIT = 64 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class SwiftReader(io.RawIOBase):
    """Reads *name* from *container*; build it with :meth:`open`."""

    def __init__(
        self, pool: ConnectionPool, container: str, name: str, read_ahead: int
    ) -> None:
        super().__init__()
        self._pool = pool
        self._container = container
        self._name = name
        self.size = 0
        self._max_window = max(read_ahead, _FIRST_WINDOW)
        self._window = _FIRST_WINDOW
        self._pos = 0
        # The open window: its body, connection, and where the body is.
        self._body = None
        self._lease: tuple[Connection, str | None] | None = None
        self._body_start = 0
        self._body_pos = 0
        self._body_end = 0
        #: Ranged GETs issued so far (the tests check laziness with it).
        self.requests = 0

    @classmethod
    def open(
        cls, pool: ConnectionPool, container: str, name: str, read_ahead: int
    ) -> SwiftReader:
        """Open the object: GET its first window, which also tells its size.

        :raises BlobNotFound: no such object.
        """
        reader = cls(pool, container, name, read_ahead)
        reader._open_first_window()
        return reader

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_closed()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_closed()
        pos = seek_position(self._pos, self.size, offset, whence)
        self._pos = pos
        return pos

    def readinto(self, buffer) -> int:  # type: ignore[override]
        self._check_closed()
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.size - self._pos)
        done = 0
        # Fill the buffer across windows: callers may assume a short read
        # means the end.
        while done < want:
            done += self._read_some(view[done:want])
        return done

    def readall(self) -> bytes:
        # RawIOBase.readall reads 8 KiB at a time; whole chunks are faster.
        parts = []
        while chunk := self.read(CHUNK_SIZE):
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            self._drop_window(healthy=True)
        super().close()

    # -- windows -------------------------------------------------------------

    def _read_some(self, view: memoryview) -> int:
        if self._body is None or self._body_pos != self._pos:
            self._open_window(len(view))
        n = min(len(view), self._body_end - self._body_pos)
        for attempt in (1, 2):
            try:
                data = self._body.read(n)
            except SWIFT_ERRORS as exc:
                self._drop_window(healthy=False)
                if attempt == 2:
                    raise translate(exc, f"read object {self._where}") from exc
                self._open_window(len(view))
                continue
            if data:
                break
            # The body ended before the range did: the connection was cut.
            self._drop_window(healthy=False)
            if attempt == 2:
                raise Corrupt(
                    f"Swift ended object {self._where} early at byte {self._pos} "
                    f"of {self.size}"
                )
            self._open_window(len(view))
        k = len(data)
        view[:k] = data
        self._pos += k
        self._body_pos += k
        if self._body_pos >= self._body_end:
            # Window done: give the connection back; the next one (if the
            # caller reads on from here) is twice as big.
            self._window = min(
                2 * (self._body_end - self._body_start), self._max_window
            )
            self._drop_window(healthy=True)
        return k

    def _open_first_window(self) -> None:
        try:
            headers = self._request(0, _FIRST_WINDOW)
        except _Empty:
            return  # a zero-byte object: nothing to read, ever
        got = headers.get("content-range")
        match = _CONTENT_RANGE.fullmatch(got or "")
        if match is not None and match[1] == "0":
            end, self.size = int(match[2]) + 1, int(match[3])
        elif got is None:  # the whole object, without a range
            end = self.size = int(headers["content-length"])
        else:
            self._drop_window(healthy=False)
            raise Corrupt(f"Swift answered range {got!r} for object {self._where}")
        self._body_end = end

    def _open_window(self, want: int) -> None:
        sequential = self._body is None and self._pos == self._body_end
        self._drop_window(healthy=True)
        if not sequential:
            self._window = _FIRST_WINDOW
        start = self._pos
        end = min(self.size, start + max(self._window, min(want, self._max_window)))
        try:
            headers = self._request(start, end)
        except _Empty:
            raise BlobNotFound(
                f"backend object {self._where} was replaced while being read"
            ) from None
        self._body_end = end
        expected = f"bytes {start}-{end - 1}/{self.size}"
        got = headers.get("content-range")
        if got != expected and not (got is None and start == 0 and end == self.size):
            self._drop_window(healthy=False)
            raise Corrupt(
                f"Swift answered range {got!r} for {expected!r} of object "
                f"{self._where}: it changed while being read"
            )

    def _request(self, start: int, end: int) -> Mapping[str, Any]:
        """GET bytes [start, end) as the new window; return the headers."""
        conn, handed = self._pool.acquire()
        self._lease = (conn, handed)
        self.requests += 1
        try:
            headers, body = conn.get_object(
                self._container,
                self._name,
                resp_chunk_size=CHUNK_SIZE,
                headers={"Range": f"bytes={start}-{end - 1}"},
            )
        except SWIFT_ERRORS as exc:
            status = getattr(exc, "http_status", None)
            self._drop_window(healthy=status is not None)
            if status == 404:
                raise BlobNotFound(f"backend object {self._where} not found") from None
            if status == 416:  # no byte at start: the object is empty
                raise _Empty from None
            raise translate(exc, f"read object {self._where}") from exc
        self._body = body
        self._body_start = self._body_pos = start
        return headers

    def _drop_window(self, *, healthy: bool) -> None:
        body, self._body = self._body, None
        if body is not None:
            left = self._body_end - self._body_pos
            if healthy and 0 < left <= _DRAIN_LIMIT:
                # Reading off a little is cheaper than a new connection.
                try:
                    while body.read(CHUNK_SIZE):
                        pass
                except SWIFT_ERRORS:
                    healthy = False
            # Read to its end, this returns the HTTP connection to the
            # session's pool; with bytes left unread, it drops it.
            body.close()
        lease, self._lease = self._lease, None
        if lease is not None:
            self._pool.release(*lease, healthy=healthy)

    @property
    def _where(self) -> str:
        return f"'{self._container}/{self._name}'"

    def _check_closed(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")


class _Empty(Exception):
    """Swift answered 416: the object has no bytes."""
