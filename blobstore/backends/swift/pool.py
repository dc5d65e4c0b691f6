"""Pooled swiftclient connections that share one auth token, and the mapping
of Swift failures onto :mod:`blobstore.errors`.

A :class:`swiftclient.client.Connection` is one HTTP session plus the retry
loop (backoff on connection errors and 5xx, one re-auth on 401), and is not
safe to share between threads. The pool hands each operation a connection of
its own and keeps up to ``size`` idle ones for reuse. The token is shared: a
connection that re-authenticated publishes its new token when it comes back,
and every connection handed out afterwards starts with it, so an expired
token is renewed once (or once per request in flight when it expired), not
once per pooled connection.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from requests.exceptions import RequestException
from swiftclient.client import ClientException
from swiftclient.client import Connection

from blobstore.errors import BadParams
from blobstore.errors import BlobStoreError
from blobstore.errors import InsufficientStorage
from blobstore.errors import Unavailable

__all__ = [
    "SWIFT_ERRORS",
    "ConnectionPool",
    "delete_object",
    "is_not_found",
    "listing",
    "translate",
]

#: What a swiftclient call raises when Swift fails (after its own retries).
SWIFT_ERRORS = (ClientException, RequestException, socket.error)


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, ClientException) and exc.http_status == 404


def translate(exc: BaseException, what: str) -> BlobStoreError:
    """The blobstore error for a failed Swift call; *what* says what was
    being done to which container/object ("put object 'c/o'")."""
    if isinstance(exc, ClientException):
        status = exc.http_status
        detail = f"{status} {exc.http_reason}" if status else exc.msg
        if status == 507:
            return InsufficientStorage(f"Swift has no room to {what}: {detail}")
        if status == 413:
            return BadParams(f"Swift refused to {what}: object too large ({detail})")
        if status in (401, 403):
            return Unavailable(
                f"Swift refused the credentials while trying to {what} ({detail}); "
                "check backend.user/key/auth_url"
            )
        return Unavailable(f"Swift is unavailable: cannot {what}: {detail}")
    return Unavailable(f"Swift is unreachable ({_reason(exc)}): cannot {what}")


def _reason(exc: BaseException) -> str:
    """The root cause of a connection failure ("Connection refused" at
    host:port), not requests' and urllib3's layers of wrapping."""
    where = ""
    request = getattr(exc, "request", None)
    if request is not None and getattr(request, "url", None):
        where = f" at {urlsplit(request.url).netloc}"
    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.strerror:
            return f"{cur.strerror}{where}"
        if isinstance(cur, TimeoutError):  # builtin (socket.timeout)
            return f"timed out{where}"
        cur = (
            getattr(cur, "reason", None)
            or cur.__cause__
            or cur.__context__
            or next((a for a in cur.args if isinstance(a, BaseException)), None)
        )
    return f"{exc}{where}"


class ConnectionPool:
    """Connections made by *factory*, at most *size* kept idle."""

    def __init__(self, factory: Callable[[], Connection], size: int) -> None:
        self._factory = factory
        self._size = size
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._url: str | None = None
        self._token: str | None = None
        self._closed = False

    @property
    def token(self) -> str | None:
        """The newest token any connection obtained (None before the first)."""
        return self._token

    def acquire(self) -> tuple[Connection, str | None]:
        """A connection for the caller alone, and the token it was handed
        (give both back to :meth:`release`)."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
            url, token = self._url, self._token
        if conn is None:
            conn = self._factory()
        if token is not None and conn.token != token:
            conn.url, conn.token = url, token
        return conn, conn.token

    def release(self, conn: Connection, handed: str | None, *, healthy: bool) -> None:
        """Take *conn* back. An unhealthy one (its request failed midway) has
        its HTTP session closed first, so the next user starts clean."""
        with self._lock:
            if conn.token is not None and conn.token != handed:
                # It re-authenticated while out: everyone gets the new token.
                self._url, self._token = conn.url, conn.token
            keep = not self._closed and len(self._idle) < self._size
            if keep:
                if not healthy:
                    conn.close()
                self._idle.append(conn)
        if not keep:
            conn.close()

    @contextlib.contextmanager
    def connection(self, *, retries: int | None = None) -> Iterator[Connection]:
        """A pooled connection for the block; *retries* overrides the
        configured retry count (0 for requests that cannot be repeated)."""
        conn, handed = self.acquire()
        saved = conn.retries
        if retries is not None:
            conn.retries = retries
        healthy = False
        try:
            yield conn
            healthy = True
        except ClientException as exc:
            # An HTTP error answer was read whole: the session is still good.
            healthy = exc.http_status is not None
            raise
        finally:
            conn.retries = saved
            self.release(conn, handed, healthy=healthy)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            self._closed = True
        for conn in idle:
            conn.close()


def delete_object(conn: Connection, container: str, obj: str) -> None:
    """DELETE one object; one that is not there is fine."""
    try:
        conn.delete_object(container, obj)
    except SWIFT_ERRORS as exc:
        if not is_not_found(exc):
            raise


def listing(
    pool: ConnectionPool, container: str, *, missing_ok: bool = False, **query: str
) -> Iterator[dict[str, Any]]:
    """Every entry of a container listing, page by page with markers; each
    page on its own pooled connection (a caller may take its time between
    entries). A missing container is an empty listing if *missing_ok*.
    Raises swiftclient's errors (the caller knows what it was doing)."""
    marker = ""
    while True:
        try:
            with pool.connection() as conn:
                _, page = conn.get_container(container, marker=marker, **query)
        except SWIFT_ERRORS as exc:
            if missing_ok and is_not_found(exc):
                return
            raise
        if not page:
            return
        yield from page
        last = page[-1]
        marker = last.get("name") or last["subdir"]
