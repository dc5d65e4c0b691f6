"""Slow, broken and odd clients at the wire, over raw sockets against a real
``blobstore serve`` (api/worker.py): stalls time out and free the thread,
an Expect other than 100-continue is ignored, and what gunicorn's parser
refuses is answered in the house style (JSON, or S3 XML on S3's paths)."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from tests.e2e.server import ServerProcess

ACCESS_KEY, SECRET_KEY = "AKIDWIRETEST", "wire-test-secret-key"
TIMEOUT = 2  # seconds: [server] header_timeout and body_timeout below
CONFIG = f"""
[server]
header_timeout = "{TIMEOUT}s"
body_timeout = "{TIMEOUT}s"
[s3]
enabled = true
[[s3.credentials]]
access_key = "{ACCESS_KEY}"
secret_key = "{SECRET_KEY}"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # One worker with one thread: a stalled client that held its thread
    # would block every later request of the module.
    srv = ServerProcess(
        tmp_path_factory.mktemp("wire"), config=CONFIG, workers=1, threads=1
    )
    srv.start()
    yield srv
    srv.stop()


def connect(server: ServerProcess) -> socket.socket:
    parts = urlsplit(server.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


def read_all(sock: socket.socket) -> tuple[bytes, float]:
    """Everything until the server closes, and how long that took."""
    start = time.monotonic()
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data, time.monotonic() - start


def split(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def blob_count(server: ServerProcess) -> int:
    return requests.get(f"{server.url}/v1/stats", timeout=30).json()["blobs"]


def s3_head(server: ServerProcess, method: str, path: str, headers: dict) -> bytes:
    """A signed request head (payload unsigned), as bytes on the wire."""
    request = AWSRequest(method=method, url=server.url + path, headers=headers)
    request.context["payload_signing_enabled"] = False
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(
        request
    )
    lines = [f"{method} {path} HTTP/1.1", f"Host: {urlsplit(server.url).netloc}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def s3_client(server: ServerProcess):
    return boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def bucket(server):
    s3_client(server).create_bucket(Bucket="wire")
    return "wire"


# -- stalls ---------------------------------------------------------------------


def test_a_body_that_stops_is_a_408_and_stores_nothing(server):
    before = blob_count(server)
    with connect(server) as sock:
        sock.sendall(
            b"POST /v1/blobs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
            + b"x" * 10
        )
        response, took = read_all(sock)  # the server closes: it cannot resume
    status, headers, body = split(response)
    assert status == 408
    assert headers["connection"] == "close"
    error = json.loads(body)
    assert error["code"] == "request_timeout"
    assert "after 10 bytes" in error["message"]
    assert TIMEOUT - 0.5 < took < TIMEOUT + 10
    assert blob_count(server) == before
    # The only thread is free again.
    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_a_chunked_body_that_stops_is_a_408(server):
    with connect(server) as sock:
        sock.sendall(
            b"POST /v1/blobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"\r\n5\r\nhello\r\n"
        )
        status, _, body = split(read_all(sock)[0])
    assert status == 408
    assert json.loads(body)["code"] == "request_timeout"


def test_an_s3_body_that_stops_is_request_timeout_xml(server, bucket):
    before = blob_count(server)
    head = s3_head(server, "PUT", f"/{bucket}/stalled", {"Content-Length": "1000"})
    with connect(server) as sock:
        sock.sendall(head + b"y" * 10)
        status, headers, body = split(read_all(sock)[0])
    assert status == 400
    assert headers["content-type"] == "application/xml"
    assert b"<Code>RequestTimeout</Code>" in body
    assert blob_count(server) == before
    with pytest.raises(s3_client(server).exceptions.ClientError):
        s3_client(server).head_object(Bucket=bucket, Key="stalled")


def test_a_request_head_that_stops_is_disconnected(server):
    with connect(server) as sock:
        sock.sendall(b"PUT /v1/blobs HTTP/1.1\r\nHost: x\r\nContent-Len")
        response, took = read_all(sock)
    assert response == b""
    assert TIMEOUT - 0.5 < took < TIMEOUT + 10
    assert "client stalled: connection closed" in server.log()
    assert "Socket error processing request" not in server.log()
    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_a_slow_but_steady_body_is_not_a_stall(server):
    # Each pause is under the timeout; the whole upload is well over it.
    data = b"0123456789" * 4
    with connect(server) as sock:
        sock.sendall(
            b"POST /v1/blobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + f"Content-Length: {len(data)}\r\n\r\n".encode()
        )
        for i in range(0, len(data), 10):
            sock.sendall(data[i : i + 10])
            time.sleep(TIMEOUT * 0.6)
        status, _, body = split(read_all(sock)[0])
    assert status in (200, 201), body


# -- Expect ---------------------------------------------------------------------


@pytest.mark.parametrize("expect", ["", "foo", "100-continue, bar"])
def test_an_expect_other_than_100_continue_is_ignored_natively(server, expect):
    with connect(server) as sock:
        sock.sendall(
            b"POST /v1/blobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + f"Expect: {expect}\r\nContent-Length: 5\r\n\r\nhello".encode()
        )
        status, _, body = split(read_all(sock)[0])
    assert status in (200, 201), body


@pytest.mark.parametrize("expect", ["", "foo"])
def test_an_expect_other_than_100_continue_is_ignored_by_s3(server, bucket, expect):
    client = s3_client(server)

    def add_expect(request, **kwargs):
        request.headers["Expect"] = expect

    client.meta.events.register_first("before-sign.s3.*", add_expect)
    client.create_bucket(Bucket=f"expect-{len(expect)}")
    client.put_object(Bucket=bucket, Key=f"expect-{expect}", Body=b"hello")
    got = client.get_object(Bucket=bucket, Key=f"expect-{expect}")["Body"].read()
    assert got == b"hello"


# -- what gunicorn's parser refuses -----------------------------------------------


def exchange(server: ServerProcess, raw: bytes) -> tuple[int, dict, bytes]:
    with connect(server) as sock:
        sock.sendall(raw)
        return split(read_all(sock)[0])


def test_a_malformed_content_length_is_a_json_400(server):
    status, headers, body = exchange(
        server, b"POST /v1/blobs HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\n"
    )
    assert status == 400
    assert headers["content-type"] == "application/json"
    error = json.loads(body)
    assert error["code"] == "bad_request"
    assert "CONTENT-LENGTH" in error["message"]


def test_a_malformed_content_length_on_s3_is_xml(server, bucket):
    status, headers, body = exchange(
        server,
        f"PUT /{bucket}/k HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".encode(),
    )
    assert status == 400
    assert headers["content-type"] == "application/xml"
    assert b"<Code>BadRequest</Code>" in body
    assert f"<Resource>/{bucket}/k</Resource>".encode() in body


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"GARBAGE\r\n\r\n", 400, "bad_request"),
        (b"GET /v1/stats HTTP/9.9\r\nHost: x\r\n\r\n", 400, "bad_request"),
        (
            b"GET /v1/stats HTTP/1.1\r\nHost: x\r\nX-Big: "
            + b"a" * 20000
            + b"\r\n\r\n",
            431,
            "request_header_fields_too_large",
        ),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    ],
    ids=["request-line", "version", "header-too-large", "uri-too-long"],
)
def test_what_gunicorn_refuses_is_json(server, raw, status, code):
    got, headers, body = exchange(server, raw)
    assert got == status
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["code"] == code


# -- names ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a/../b", "a/%2e%2e/b", "a//b", "x/%2E"])
def test_ref_names_with_dot_or_empty_segments_are_400_on_the_wire(server, name):
    # Raw: an HTTP library would resolve the dot segments before sending.
    blob = requests.post(f"{server.url}/v1/blobs", data=b"named", timeout=30).json()
    body = json.dumps({"hash": blob["hash"]}).encode()
    status, _, answer = exchange(
        server,
        f"PUT /v1/refs/{name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )
    assert status == 400
    assert json.loads(answer)["code"] == "bad_params"


# -- counters -------------------------------------------------------------------


def test_s3_uploads_count_as_received_bytes(server, bucket):
    from tests.e2e.test_native_e2e import metric

    name = "blobstore_http_received_bytes_total"
    route = {"route": "s3:objects.put_object"}
    before = metric(server, name, **route)
    s3_client(server).put_object(Bucket=bucket, Key="counted", Body=b"z" * 12345)
    # boto3 may frame the body (aws-chunked): at least the payload arrived.
    assert metric(server, name, **route) - before >= 12345
    part_route = {"route": "s3:multipart.upload_part"}
    client = s3_client(server)
    upload = client.create_multipart_upload(Bucket=bucket, Key="counted-mp")
    client.upload_part(
        Bucket=bucket,
        Key="counted-mp",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"p" * 1000,
    )
    assert metric(server, name, **part_route) >= 1000


# -- clients that hang up -----------------------------------------------------------


def hang_up(server: ServerProcess, head: bytes, body: bytes) -> float:
    """Send a head and part of the body, close; how long until the (only)
    thread answers the next request."""
    with connect(server) as sock:
        sock.sendall(head + body)
    start = time.monotonic()
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
    return time.monotonic() - start


def test_a_native_put_cut_off_stores_nothing_and_frees_the_thread(server):
    before = blob_count(server)
    data = b"n" * 3_000_000
    digest = hashlib.sha384(data).hexdigest()
    head = (
        f"PUT /v1/blobs/{digest} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    assert hang_up(server, head, data[:1_000_000]) < TIMEOUT  # not the timeout
    assert blob_count(server) == before
    assert (
        requests.head(f"{server.url}/v1/blobs/{digest}", timeout=10).status_code == 404
    )


def test_an_s3_put_cut_off_stores_nothing_and_frees_the_thread(server, bucket):
    before = blob_count(server)
    head = s3_head(server, "PUT", f"/{bucket}/cut", {"Content-Length": "3000000"})
    assert hang_up(server, head, b"s" * 1_000_000) < TIMEOUT
    assert blob_count(server) == before
    with pytest.raises(s3_client(server).exceptions.ClientError):
        s3_client(server).head_object(Bucket=bucket, Key="cut")


def test_a_part_cut_off_is_not_complete_and_can_be_sent_again(server):
    upload = requests.post(f"{server.url}/v1/uploads", timeout=10).json()["id"]
    part = b"p" * 6 * 1024 * 1024
    digest = hashlib.sha384(part).hexdigest()
    head = (
        f"PUT /v1/uploads/{upload}/parts/0?hash={digest}&offset=0 HTTP/1.1\r\n"
        f"Host: x\r\nContent-Length: {len(part)}\r\n\r\n"
    ).encode()
    assert hang_up(server, head, part[: 2 * 1024 * 1024]) < TIMEOUT
    info = requests.get(f"{server.url}/v1/uploads/{upload}", timeout=10).json()
    assert all(p is None or not p["complete"] for p in info["parts"])
    again = requests.put(
        f"{server.url}/v1/uploads/{upload}/parts/0",
        params={"hash": digest, "offset": 0},
        data=part,
        timeout=30,
    )
    assert again.status_code == 200, again.text
    info = requests.get(f"{server.url}/v1/uploads/{upload}", timeout=10).json()
    assert info["parts"][0]["complete"] is True


# -- kept-alive connections -------------------------------------------------------
# A thread that answered a request serves the same connection's next one
# itself while no other connection waits for a thread (api/worker.py).


def read_response(sock: socket.socket, buffered: bytearray) -> tuple[int, bytes]:
    """One response (status, body) off a kept-alive connection; bytes read
    past it stay in *buffered*."""
    while b"\r\n\r\n" not in buffered:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        buffered += chunk
    head, _, rest = bytes(buffered).partition(b"\r\n\r\n")
    status, headers, _ = split(head + b"\r\n\r\n")
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        rest += chunk
    buffered[:] = rest[length:]
    assert headers.get("connection") != "close"
    return status, rest[:length]


HEALTH = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def test_one_connection_serves_requests_back_to_back_pipelined_and_after_a_pause(
    server,
):
    data = b"kept alive"
    digest = hashlib.sha384(data).hexdigest()
    put = (
        f"PUT /v1/blobs/{digest} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data
    get = f"GET /v1/blobs/{digest} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    buffered = bytearray()
    with connect(server) as sock:
        sock.sendall(put)
        assert read_response(sock, buffered)[0] in (200, 201)
        for _ in range(200):
            sock.sendall(get)
            assert read_response(sock, buffered) == (200, data)
        sock.sendall(get + HEALTH + get)  # three at once
        assert read_response(sock, buffered) == (200, data)
        assert read_response(sock, buffered)[0] == 200
        assert read_response(sock, buffered) == (200, data)
        time.sleep(0.5)  # far longer than a thread waits for the next request
        sock.sendall(get)
        assert read_response(sock, buffered) == (200, data)
    assert buffered == b""


def test_a_connection_sending_back_to_back_does_not_starve_another(server):
    # The server has one thread. A client that never pauses gets it back
    # after every request, yet a second connection is answered at once.
    stop = threading.Event()
    served = []

    def busy() -> None:
        buffered = bytearray()
        with connect(server) as sock:
            while not stop.is_set():
                sock.sendall(HEALTH)
                served.append(read_response(sock, buffered)[0])

    hammer = threading.Thread(target=busy)
    hammer.start()
    try:
        deadline = time.monotonic() + 10
        while len(served) < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(served) >= 50, "the busy client is not being served"
        took = []
        for _ in range(5):
            start = time.monotonic()
            reply = requests.get(f"{server.url}/healthz", timeout=10)
            took.append(time.monotonic() - start)
            assert reply.status_code == 200
        during = len(served)
        time.sleep(0.2)
        assert len(served) > during, "the busy client stopped being served"
    finally:
        stop.set()
        hammer.join(timeout=30)
    assert set(served) == {200}
    assert max(took) < 1.0, took  # not "after the busy client stops"
