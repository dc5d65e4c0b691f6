"""The gunicorn worker: gthread, with what a service on the internet needs
at the wire, before and around the WSGI application.

* **Timeouts with no progress.** A client that stops sending in the middle
  of a request's head is disconnected after ``[server] header_timeout``; one
  that stops in the middle of a body, after ``[server] body_timeout`` (the
  application then answers 408 and stores nothing, see
  :mod:`blobstore_api.streaming`); one that stops taking a response, after
  ``body_timeout`` too. Both are socket timeouts, so they bound each wait
  for bytes, not the whole request: a slow but steady 32 GiB upload is fine.
  Without them a stalled client holds one of the worker's threads forever.
* **Expect.** S3 (and RFC 9110's advice to be lenient) ignores an ``Expect``
  header other than ``100-continue``; gunicorn answers 417 to it, which
  clients that send an empty one (some S3 SDKs do) cannot handle.
* **A busy connection keeps its thread.** gthread hands every request on a
  kept-alive connection from its event loop to a pool thread and back
  (a pipe write, an epoll round and a GIL hand-over each way); for a 4 KiB
  GET that was a third of the server's CPU. A thread that has answered a
  request waits up to ``_LINGER`` for the same connection's next one and
  serves it itself, as long as no other connection is waiting for a
  thread: a client sending back to back never starves another one.
* **Errors in the house style.** Requests gunicorn itself refuses (a bad
  request line, a malformed ``Content-Length``, headers too large) are
  answered with the same JSON error body as the native API, or S3's XML for
  a request that S3 would have served, instead of gunicorn's HTML page.

These hook into gunicorn's gthread worker and its parser, so setup.cfg pins
gunicorn's major version; tests/e2e/test_wire.py drives each of them over
raw sockets against a real ``blobstore serve``.
"""

from __future__ import annotations

import errno
import json
import logging
import re
import secrets
import select
import threading
from typing import Any

from gunicorn import util
from gunicorn.http.message import Request
from gunicorn.http.parser import RequestParser
from gunicorn.workers import gthread

from blobstore.config import ServerSettings
from blobstore.config import Settings
from blobstore_api.dispatch import serves_s3

__all__ = ["Worker"]

#: The status line gunicorn writes for a request it refused.
_STATUS_LINE = re.compile(rb"^HTTP/1\.1 (\d{3}) ([^\r\n]*)\r\n")

_DEFAULTS = ServerSettings()

#: How long a thread that has answered a request waits for the same
#: connection's next one before handing the connection back to the event
#: loop. Clients sending back to back send the next request well within it;
#: a thread waiting longer would only be one another connection lacks.
_LINGER = 0.002

#: S3 error codes for the statuses gunicorn's parser answers with.
_S3_CODES = {
    400: "BadRequest",
    403: "AccessDenied",
    414: "InvalidURI",
    431: "RequestHeaderSectionTooLarge",
    501: "NotImplemented",
}


class _LenientRequest(Request):
    """gunicorn's request, ignoring an ``Expect`` it does not understand."""

    def _apply_header_policy(self, name, value, *args, **kwargs):
        if name == "EXPECT" and value.strip().lower() != "100-continue":
            # Kept as sent, acted on by no one: the other policies do not
            # apply to this name (no underscore, not a scheme header).
            return (name, value)
        return super()._apply_header_policy(name, value, *args, **kwargs)


class _Connection(gthread.TConn):
    """A client connection whose reads of a request's head time out."""

    header_timeout: float | None = None

    def init(self) -> None:
        # Called before every request on the connection (gthread makes the
        # socket blocking, without a timeout, just before).
        super().init()
        self.sock.settimeout(self.header_timeout)
        if isinstance(self.parser, RequestParser):
            self.parser.mesg_class = _LenientRequest


class _ErrorPage:
    """Stands in for the client's socket while gunicorn writes its error
    page, so the status it chose (and logged) is kept and its HTML is not."""

    def __init__(self) -> None:
        self.data = bytearray()

    def gettimeout(self) -> float:
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.data += data

    def status(self) -> tuple[int, str]:
        match = _STATUS_LINE.match(bytes(self.data))
        if match is None:
            return 500, "Internal Server Error"
        return int(match.group(1)), match.group(2).decode("latin-1")


def _closing(app: Any) -> Any:
    """*app*, whose ``Connection: close`` closes the connection: gunicorn
    drops hop-by-hop headers an application sets and would announce
    keep-alive on a connection it then closes (a body left unread)."""

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list, exc_info: Any = None) -> Any:
            if any(
                name.lower() == "connection" and value.lower() == "close"
                for name, value in headers
            ):
                start_response.__self__.force_close()  # gunicorn's Response
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapped


class _TimeoutLog(logging.Filter):
    """gunicorn logs a socket timeout as an unexpected socket error, with a
    traceback; it is a client that stalled, said in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, TimeoutError):
            record.msg = "client stalled: connection closed (%s)"
            record.args = (exc,)
            record.exc_info = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class Worker(gthread.ThreadWorker):
    """gunicorn's gthread worker with the behaviours in the module docs.
    ``blobstore serve`` gives gunicorn :meth:`configured`, which knows the
    settings; the class itself (``-k blobstore_api.worker.Worker``) has the
    default timeouts and answers errors in JSON."""

    header_timeout: float | None = _DEFAULTS.header_timeout.total_seconds()
    body_timeout: float | None = _DEFAULTS.body_timeout.total_seconds()
    s3_enabled = False

    @classmethod
    def configured(cls, settings: Settings) -> type[Worker]:
        """This worker class with *settings*' timeouts and façades."""
        server = settings.server
        return type(
            cls.__name__,
            (cls,),
            {
                "__module__": cls.__module__,
                "header_timeout": server.header_timeout.total_seconds(),
                "body_timeout": server.body_timeout.total_seconds(),
                "s3_enabled": settings.s3_enabled,
            },
        )

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = _closing(self.wsgi)

    def accept(self, listener: Any) -> None:
        # gthread's accept, building a _Connection: the connection class is
        # not a hook of its own.
        try:
            client_sock, client_addr = listener.accept()
            self.nr_conns += 1
            client_sock.setblocking(True)
            conn = _Connection(
                self.cfg, client_sock, client_addr, listener.getsockname()
            )
            conn.header_timeout = self.header_timeout
            self.enqueue_req(conn)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise

    def init_process(self) -> None:
        self._queue_lock = threading.Lock()
        #: Connections handed to the thread pool that no thread has taken yet.
        self._queued = 0
        self.log.error_log.addFilter(_TimeoutLog())
        super().init_process()

    def enqueue_req(self, conn: Any) -> None:
        with self._queue_lock:
            self._queued += 1
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        # Runs in a pool thread; returns True to keep the connection alive
        # (gthread's contract), after serving as many of its requests in a
        # row as arrive without a pause while nobody else waits.
        with self._queue_lock:
            self._queued -= 1
        keep = super().handle(conn)
        while keep is True and self.alive and self._next_request_here(conn):
            keep = super().handle(conn)
        return keep

    def _next_request_here(self, conn: Any) -> bool:
        if self._queued:  # a connection waits for a thread: give this one up
            return False
        if conn.is_http2:  # gthread serves those streams its own way
            return False
        if conn.parser.unreader.buf.getvalue():  # pipelined: already here
            return True
        poller = select.poll()
        poller.register(conn.sock, select.POLLIN)
        # Readable also when the client closed: handle() then sees the end.
        return bool(poller.poll(_LINGER * 1000))

    def handle_request(self, req: Any, conn: Any) -> bool:
        conn.sock.settimeout(self.body_timeout)
        return super().handle_request(req, conn)

    def handle_error(
        self, req: Any, client: Any, addr: Any, exc: BaseException
    ) -> None:
        page = _ErrorPage()
        super().handle_error(req, page, addr, exc)  # logs, picks the status
        status, reason = page.status()
        req = req or getattr(exc, "req", None)
        message = str(exc) or reason
        if self._is_s3(req):
            from blobstore_api.s3 import xml

            body = xml.error(
                _S3_CODES.get(status, "InternalError"),
                message,
                getattr(req, "path", "") or "/",
                secrets.token_hex(8).upper(),
                {},
            )
            content_type = "application/xml"
        else:
            code = re.sub(r"[^a-z0-9]+", "_", reason.lower()).strip("_")
            body = json.dumps({"code": code, "message": message}).encode()
            content_type = "application/json"
        head = (
            f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            util.write_nonblock(client, head.encode("latin-1") + body)
        except Exception:
            self.log.debug("Failed to send error message.")

    def _is_s3(self, req: Any) -> bool:
        if not (self.s3_enabled and getattr(req, "path", None)):
            # Without a path (a request line that did not parse) it is
            # nobody's in particular: the native API's JSON.
            return False
        headers = dict(getattr(req, "headers", ()) or ())
        environ = {
            "PATH_INFO": getattr(req, "path", "") or "",
            "QUERY_STRING": getattr(req, "query", "") or "",
            "HTTP_AUTHORIZATION": headers.get("AUTHORIZATION", ""),
        }
        return serves_s3(environ)
