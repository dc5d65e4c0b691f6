"""Request bodies: aws-chunked (signed, with and without trailers, and the
unsigned-trailer variant botocore sends over TLS), Content-MD5 and the
x-amz-checksum-* headers. Every failure must store nothing."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zlib

import crc32c
import pytest
from botocore.httpchecksum import AwsChunkedWrapper
from botocore.httpchecksum import Crc32Checksum

from tests.s3.signing import SECRET_KEY
from tests.s3.signing import Api
from tests.s3.signing import aws_chunked
from tests.s3.signing import signing_key
from tests.s3.test_sigv4 import code_of

DATA = bytes(range(256)) * 1000  # 256000 bytes: several 64 KiB chunks


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def crc32_b64(data: bytes) -> str:
    return b64(zlib.crc32(data).to_bytes(4, "big"))


def crc32c_b64(data: bytes) -> str:
    return b64(crc32c.crc32c(data).to_bytes(4, "big"))


@pytest.fixture
def bucket(api: Api) -> str:
    assert api.request("PUT", "/body-bucket").status_code == 200
    return "body-bucket"


def put_streaming(
    api: Api,
    path: str,
    data: bytes,
    *,
    payload: str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    trailers: dict[str, str] | None = None,
    decoded_length: int | None = None,
    edit=lambda body: body,
):
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(
            len(data) if decoded_length is None else decoded_length
        ),
    }
    if trailers:
        headers["x-amz-trailer"] = ",".join(trailers)
    signed = api.sign("PUT", path, headers=headers, payload=payload)
    date = signed["X-Amz-Date"]
    seed = re.search(r"Signature=([0-9a-f]{64})", signed["Authorization"]).group(1)
    key = signing_key(SECRET_KEY, date[:8]) if "HMAC" in payload else None
    body = aws_chunked(
        data,
        65536,
        seed=seed,
        key=key,
        amz_date=date,
        scope=f"{date[:8]}/us-east-1/s3/aws4_request",
        trailers=trailers,
    )
    return api.send("PUT", path, "", signed, edit(body))


def assert_nothing_stored(api: Api, path: str, before) -> None:
    assert api.request("GET", path).status_code == 404
    assert api.store.stats() == before


def test_signed_chunks(api, bucket):
    result = put_streaming(api, f"/{bucket}/k", DATA)
    assert result.status_code == 200, result.text
    assert result.headers["etag"] == f'"{hashlib.md5(DATA).hexdigest()}"'
    got = api.request("GET", f"/{bucket}/k")
    assert got.content == DATA
    assert "content-encoding" not in got.headers  # aws-chunked is not stored


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda b: b.replace(b"\x05", b"\x06", 1), "SignatureDoesNotMatch"),
        (
            lambda b: re.sub(rb"chunk-signature=[0-9a-f]{64}", b"", b, count=1),
            "SignatureDoesNotMatch",
        ),
        (lambda b: b[:-40], "IncompleteBody"),
        (lambda b: b"zz;" + b, "InvalidRequest"),
    ],
)
def test_bad_signed_chunks_store_nothing(api, bucket, edit, code):
    before = api.store.stats()
    result = put_streaming(api, f"/{bucket}/k", DATA, edit=edit)
    assert code_of(result) == code
    assert_nothing_stored(api, f"/{bucket}/k", before)


def test_decoded_length_must_match(api, bucket):
    before = api.store.stats()
    for length in (len(DATA) - 1, len(DATA) + 1):
        result = put_streaming(api, f"/{bucket}/k", DATA, decoded_length=length)
        assert code_of(result) == "IncompleteBody"
    assert_nothing_stored(api, f"/{bucket}/k", before)


def test_signed_chunks_with_signed_checksum_trailer(api, bucket):
    trailer = {"x-amz-checksum-crc32c": crc32c_b64(DATA)}
    result = put_streaming(
        api,
        f"/{bucket}/k",
        DATA,
        payload="STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        trailers=trailer,
    )
    assert result.status_code == 200, result.text
    assert result.headers["x-amz-checksum-crc32c"] == trailer["x-amz-checksum-crc32c"]
    assert api.request("GET", f"/{bucket}/k").content == DATA


def test_bad_trailers_store_nothing(api, bucket):
    before = api.store.stats()
    payload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    wrong = {"x-amz-checksum-crc32c": crc32c_b64(b"other")}
    result = put_streaming(api, f"/{bucket}/k", DATA, payload=payload, trailers=wrong)
    assert code_of(result) == "BadDigest"
    good = {"x-amz-checksum-crc32c": crc32c_b64(DATA)}
    result = put_streaming(
        api,
        f"/{bucket}/k",
        DATA,
        payload=payload,
        trailers=good,
        # Flip the signature's first hex digit (to another digit: a "0"
        # replaced by "0" would leave it valid).
        edit=lambda b: re.sub(
            rb"trailer-signature:([0-9a-f])",
            lambda m: b"trailer-signature:" + (b"1" if m[1] == b"0" else b"0"),
            b,
        ),
    )
    assert code_of(result) == "SignatureDoesNotMatch"
    assert_nothing_stored(api, f"/{bucket}/k", before)


def test_unsigned_trailer_as_botocore_sends_it(api, bucket):
    """botocore's own aws-chunked encoder (STREAMING-UNSIGNED-PAYLOAD-TRAILER)."""
    body = AwsChunkedWrapper(
        io.BytesIO(DATA),
        checksum_cls=Crc32Checksum,
        checksum_name="x-amz-checksum-crc32",
    ).read()
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(DATA)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    signed = api.sign(
        "PUT",
        f"/{bucket}/k",
        headers=headers,
        payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    )
    result = api.send("PUT", f"/{bucket}/k", "", signed, body)
    assert result.status_code == 200, result.text
    assert result.headers["x-amz-checksum-crc32"] == crc32_b64(DATA)
    assert api.request("GET", f"/{bucket}/k").content == DATA
    before = api.store.stats()
    corrupted = body.replace(b"\x10\x11", b"\x11\x11", 1)
    signed = api.sign(
        "PUT",
        f"/{bucket}/k2",
        headers=headers,
        payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    )
    result = api.send("PUT", f"/{bucket}/k2", "", signed, corrupted)
    assert code_of(result) == "BadDigest"
    assert_nothing_stored(api, f"/{bucket}/k2", before)


def test_content_md5(api, bucket):
    good = b64(hashlib.md5(b"body").digest())
    result = api.request(
        "PUT", f"/{bucket}/k", body=b"body", headers={"Content-MD5": good}
    )
    assert result.status_code == 200
    before = api.store.stats()
    wrong = b64(hashlib.md5(b"other").digest())
    result = api.request(
        "PUT", f"/{bucket}/m", body=b"body", headers={"Content-MD5": wrong}
    )
    assert (code_of(result), result.status_code) == ("BadDigest", 400)
    for invalid in ("not base64!", b64(b"short")):
        result = api.request(
            "PUT", f"/{bucket}/m", body=b"body", headers={"Content-MD5": invalid}
        )
        assert (code_of(result), result.status_code) == ("InvalidDigest", 400)
    assert_nothing_stored(api, f"/{bucket}/m", before)


@pytest.mark.parametrize(
    ("name", "digest"),
    [
        ("crc32", lambda d: zlib.crc32(d).to_bytes(4, "big")),
        ("crc32c", lambda d: crc32c.crc32c(d).to_bytes(4, "big")),
        ("sha1", lambda d: hashlib.sha1(d).digest()),
        ("sha256", lambda d: hashlib.sha256(d).digest()),
    ],
)
def test_checksum_headers(api, bucket, name, digest):
    header = f"x-amz-checksum-{name}"
    result = api.request(
        "PUT", f"/{bucket}/k", body=DATA, headers={header: b64(digest(DATA))}
    )
    assert result.status_code == 200
    assert result.headers[header] == b64(digest(DATA))
    before = api.store.stats()
    result = api.request(
        "PUT", f"/{bucket}/m", body=DATA, headers={header: b64(digest(b"other"))}
    )
    assert (code_of(result), result.status_code) == ("BadDigest", 400)
    result = api.request("PUT", f"/{bucket}/m", body=DATA, headers={header: "AAAA!"})
    assert (code_of(result), result.status_code) == ("InvalidRequest", 400)
    assert_nothing_stored(api, f"/{bucket}/m", before)


def test_only_one_checksum_header(api, bucket):
    result = api.request(
        "PUT",
        f"/{bucket}/k",
        body=b"x",
        headers={
            "x-amz-checksum-crc32": crc32_b64(b"x"),
            "x-amz-checksum-crc32c": crc32c_b64(b"x"),
        },
    )
    assert code_of(result) == "InvalidRequest"


def test_too_large_bodies_are_refused_before_reading(api, bucket):
    result = put_streaming(api, f"/{bucket}/k", b"", decoded_length=6 * 1024**3)
    assert (code_of(result), result.status_code) == ("EntityTooLarge", 400)
