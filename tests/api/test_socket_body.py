"""SocketBody: request bodies read straight from gunicorn's socket.

These run gunicorn's real request parser over a real loopback TCP
connection, so they check the one thing the fast path must never break:
gunicorn's own view of the connection (how much body is left, where the
next keep-alive request starts).
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from blobstore.errors import BadParams
from blobstore.errors import SizeMismatch
from blobstore.hashing import VerifyingReader
from blobstore_api.streaming import RequestBody
from blobstore_api.streaming import SocketBody

BODY = bytes(range(256)) * 4096  # 1 MiB
HEAD = b"PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
NEXT = b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def conn() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(client, server) ends of one loopback TCP connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    with client, server:
        yield client, server


def _request(server: socket.socket) -> tuple[RequestParser, dict]:
    cfg = Config()
    parser = RequestParser(cfg, server, ("127.0.0.1", 1))
    req = next(parser)
    _, env = wsgi.create(req, server, ("127.0.0.1", 1), ("127.0.0.1", 2), cfg)
    return parser, env


def _send_later(client: socket.socket, *pieces: bytes) -> threading.Thread:
    def send() -> None:
        for piece in pieces:
            client.sendall(piece)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def _read_all(body: RequestBody, size: int = 300_000) -> bytes:
    out = bytearray()
    buf = bytearray(size)
    while n := body.readinto(buf):
        out += buf[:n]
    return bytes(out)


def test_reads_the_body_and_leaves_the_connection_at_the_next_request(conn):
    client, server = conn
    # Part of the body arrives with the headers (gunicorn buffers it), the
    # rest later, then a pipelined second request.
    client.sendall(HEAD % len(BODY) + BODY[:1000])
    sender = _send_later(client, BODY[1000:500_000], BODY[500_000:] + NEXT)
    parser, env = _request(server)
    direct = SocketBody.of(env)
    assert direct is not None
    body = RequestBody(env["wsgi.input"], 1 << 30, direct)
    assert _read_all(body) == BODY
    assert body.count == len(BODY)
    sender.join()
    assert next(parser).path == "/b"


def test_a_body_read_only_in_part_is_drained_by_gunicorn(conn):
    client, server = conn
    sender = _send_later(client, HEAD % len(BODY), BODY + NEXT)
    parser, env = _request(server)
    body = RequestBody(env["wsgi.input"], 1 << 30, SocketBody.of(env))
    buf = bytearray(4096)
    assert body.readinto(buf) > 0  # the handler failed after a few bytes
    sender.join()
    assert next(parser).path == "/b"


def test_the_read_never_goes_past_the_body(conn):
    client, server = conn
    client.sendall(HEAD % 10 + b"0123456789" + NEXT)
    parser, env = _request(server)
    body = RequestBody(env["wsgi.input"], 1 << 30, SocketBody.of(env))
    assert body.read(1 << 20) == b"0123456789"
    assert body.read(1 << 20) == b""
    assert next(parser).path == "/b"


def test_a_client_that_stops_early_gives_a_short_body(conn):
    client, server = conn
    client.sendall(HEAD % len(BODY) + BODY[:70_000])
    client.shutdown(socket.SHUT_WR)
    _, env = _request(server)
    body = RequestBody(env["wsgi.input"], 1 << 30, SocketBody.of(env))
    with pytest.raises(SizeMismatch):
        VerifyingReader(body, len(BODY)).drain()
    assert body.count == 70_000


def test_a_reset_connection_is_a_bad_request_and_not_reused(conn):
    client, server = conn
    client.sendall(HEAD % len(BODY) + BODY[:1000])
    parser, env = _request(server)
    body = RequestBody(env["wsgi.input"], 1 << 30, SocketBody.of(env))
    assert body.readinto(bytearray(4096)) == 1000  # what came with the headers
    # Close with SO_LINGER 0: the server's next read gets a reset.
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    with pytest.raises(BadParams, match="could not be read after 1000 bytes"):
        body.readinto(bytearray(4096))
    assert env["wsgi.input"].failed  # gunicorn will close, not parse on


def test_the_limit_still_applies(conn):
    import falcon

    client, server = conn
    client.sendall(HEAD % len(BODY) + BODY)
    _, env = _request(server)
    body = RequestBody(env["wsgi.input"], 100_000, SocketBody.of(env))
    with pytest.raises(falcon.HTTPContentTooLarge):
        _read_all(body)


def test_only_gunicorns_length_delimited_bodies_take_the_fast_path(conn):
    client, server = conn
    client.sendall(
        b"PUT /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
    )
    _, env = _request(server)
    assert SocketBody.of(env) is None  # chunked
    assert SocketBody.of({"wsgi.input": env["wsgi.input"]}) is None  # no socket
    assert SocketBody.of({}) is None


def test_the_generic_path_reads_the_same_bytes_when_gunicorn_changes(conn):
    """The fallback, taken when gunicorn's body reader is not the shape the
    fast path knows (here: its Body subclassed, as a future gunicorn might
    reshape it): the same bytes, the connection left at the next request."""
    from gunicorn.http.body import Body

    client, server = conn
    client.sendall(HEAD % len(BODY) + BODY[:1000])
    sender = _send_later(client, BODY[1000:], NEXT)
    parser, env = _request(server)

    class ReshapedBody(Body):
        pass

    env["wsgi.input"].__class__ = ReshapedBody
    assert SocketBody.of(env) is None
    body = RequestBody(env["wsgi.input"], 1 << 30, None)
    assert _read_all(body) == BODY
    sender.join()
    following = next(parser)
    assert following.method == "GET" and following.path == "/b"
