"""HTTP-level behaviour against the real server: chunked transfer encoding,
``Expect: 100-continue``, botocore's aws-chunked trailer body over chunked
transfer encoding, and the errors of requests no SDK would send."""

from __future__ import annotations

import io
import socket
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.httpchecksum import AwsChunkedWrapper
from botocore.httpchecksum import Crc32Checksum

from tests.s3.realserver import S3Server


class _Signer(S3SigV4Auth):
    def __init__(self, server: S3Server, payload: str) -> None:
        super().__init__(
            Credentials(server.access_key, server.secret_key), "s3", server.region
        )
        self._payload = payload

    def payload(self, request):
        return self._payload


def signed_head(
    server: S3Server, method: str, path: str, headers: dict[str, str], payload: str
) -> bytes:
    """The request line and headers, signed, as bytes on the wire."""
    request = AWSRequest(method=method, url=server.endpoint_url + path, headers=headers)
    _Signer(server, payload).add_auth(request)
    netloc = urlsplit(server.endpoint_url).netloc
    lines = [f"{method} {path} HTTP/1.1", f"Host: {netloc}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def exchange(server: S3Server, head: bytes, body_parts: list[bytes], *, expect=False):
    """Send a request, return (status line, whole response)."""
    parts = urlsplit(server.endpoint_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head)
        if expect:
            interim = sock.recv(4096)
            assert interim.startswith(b"HTTP/1.1 100 Continue"), interim
        for part in body_parts:
            sock.sendall(part)
        response = sock.makefile("rb")
        status = response.readline().rstrip(b"\r\n")
        head = b""
        length = 0
        while (line := response.readline()) not in (b"\r\n", b""):
            head += line
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = response.read(length)
    return status, head + b"\r\n" + body


def chunked(data: bytes, size: int = 1000) -> list[bytes]:
    """HTTP/1.1 chunked transfer encoding."""
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces] + [b"0\r\n\r\n"]


def test_chunked_transfer_encoding_without_length(s3_server, s3, bucket):
    data = b"streamed without a length " * 500
    head = signed_head(
        s3_server,
        "PUT",
        f"/{bucket}/te",
        {"Transfer-Encoding": "chunked"},
        "UNSIGNED-PAYLOAD",
    )
    status, _ = exchange(s3_server, head, chunked(data))
    assert status == b"HTTP/1.1 200 OK"
    assert s3.get_object(Bucket=bucket, Key="te")["Body"].read() == data


def test_expect_100_continue(s3_server, s3, bucket):
    data = b"after the interim response"
    head = signed_head(
        s3_server,
        "PUT",
        f"/{bucket}/continued",
        {"Content-Length": str(len(data)), "Expect": "100-continue"},
        "UNSIGNED-PAYLOAD",
    )
    status, _ = exchange(s3_server, head, [data], expect=True)
    assert status == b"HTTP/1.1 200 OK"
    assert s3.get_object(Bucket=bucket, Key="continued")["Body"].read() == data


def test_unsigned_trailer_over_chunked_transfer_encoding(s3_server, s3, bucket):
    """What botocore sends over TLS: aws-chunked inside chunked transfer
    encoding, with a CRC32 trailer."""
    data = bytes(range(256)) * 4000
    body = AwsChunkedWrapper(
        io.BytesIO(data),
        checksum_cls=Crc32Checksum,
        checksum_name="x-amz-checksum-crc32",
    ).read()
    headers = {
        "Transfer-Encoding": "chunked",
        "Content-Encoding": "aws-chunked",
        "X-Amz-Trailer": "x-amz-checksum-crc32",
        "X-Amz-Decoded-Content-Length": str(len(data)),
    }
    head = signed_head(
        s3_server,
        "PUT",
        f"/{bucket}/trailer",
        headers,
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    )
    status, response = exchange(s3_server, head, chunked(body, 65536))
    assert status == b"HTTP/1.1 200 OK"
    assert b"x-amz-checksum-crc32:" in response.lower()
    assert s3.get_object(Bucket=bucket, Key="trailer")["Body"].read() == data


def test_put_without_any_length_is_refused(s3_server, bucket):
    head = signed_head(s3_server, "PUT", f"/{bucket}/nolength", {}, "UNSIGNED-PAYLOAD")
    status, response = exchange(s3_server, head, [])
    assert status.startswith(b"HTTP/1.1 411")
    assert b"<Code>MissingContentLength</Code>" in response


@pytest.mark.parametrize(
    ("method", "path", "code", "status"),
    [
        ("GET", "/{bucket}?policy", "NotImplemented", b"501"),
        ("PUT", "/{bucket}/k?tagging", "NotImplemented", b"501"),
        ("POST", "/{bucket}/k", "MethodNotAllowed", b"405"),
        ("DELETE", "/", "MethodNotAllowed", b"405"),
        ("GET", "/{bucket}/%FF%FE", "InvalidURI", b"400"),
        ("GET", "/{bucket}/k?versionId=abc", "NoSuchVersion", b"404"),
    ],
)
def test_requests_the_facade_refuses(s3_server, bucket, method, path, code, status):
    head = signed_head(
        s3_server, method, path.format(bucket=bucket), {}, "UNSIGNED-PAYLOAD"
    )
    line, response = exchange(s3_server, head, [])
    assert line.split(b" ")[1] == status, response
    assert f"<Code>{code}</Code>".encode() in response
