"""Request authentication: SigV4 (header and presigned) and SigV2.

Known-answer tests use the worked examples of the AWS SigV4 documentation;
the others sign with botocore (the reference client), then tamper.
"""

from __future__ import annotations

import io
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from blobstore_api.s3.chunked import AwsChunkedReader
from blobstore_api.s3.errors import S3Error
from blobstore_api.s3.errors import SignatureDoesNotMatch
from blobstore_api.s3.sigv4 import Credential
from blobstore_api.s3.sigv4 import HttpRequest
from blobstore_api.s3.sigv4 import Verifier
from tests.s3.signing import OTHER_KEY
from tests.s3.signing import OTHER_SECRET
from tests.s3.signing import Api

# -- known answers (the AWS documentation's examples) ---------------------------

DOC_KEY = Credential(
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "o"
)
DOC_TIME = datetime(2013, 5, 24, tzinfo=UTC)
DOC_SCOPE = "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def doc_request(method, path, query=(), **headers) -> HttpRequest:
    return HttpRequest(
        method,
        path,
        path,
        tuple(query),
        {k.replace("_", "-"): v for k, v in headers.items()},
    )


def test_header_signature_known_answer():
    signature = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    request = doc_request(
        "GET",
        "/test.txt",
        host="examplebucket.s3.amazonaws.com",
        range="bytes=0-9",
        x_amz_content_sha256=EMPTY,
        x_amz_date="20130524T000000Z",
        authorization=f"AWS4-HMAC-SHA256 Credential={DOC_SCOPE},"
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        f"Signature={signature}",
    )
    verifier = Verifier([DOC_KEY], "us-east-1")
    assert verifier.verify(request, DOC_TIME).credential == DOC_KEY
    tampered = doc_request(
        "GET", "/test.txt", **{**dict(request.headers), "range": "bytes=0-10"}
    )
    with pytest.raises(SignatureDoesNotMatch):
        verifier.verify(tampered, DOC_TIME)


def test_presigned_known_answer():
    query = [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", DOC_SCOPE),
        ("X-Amz-Date", "20130524T000000Z"),
        ("X-Amz-Expires", "86400"),
        ("X-Amz-SignedHeaders", "host"),
        (
            "X-Amz-Signature",
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
        ),
    ]
    request = doc_request(
        "GET", "/test.txt", query, host="examplebucket.s3.amazonaws.com"
    )
    verifier = Verifier([DOC_KEY], "us-east-1")
    verifier.verify(request, DOC_TIME + timedelta(hours=23))
    with pytest.raises(S3Error) as exc:
        verifier.verify(request, DOC_TIME + timedelta(hours=24, seconds=1))
    assert exc.value.code == "AccessDenied"
    assert "expired" in exc.value.message


def test_chunked_upload_known_answer():
    """The AWS chunked-upload example: 64 KiB + 1 KiB of 'a', signed chunks."""
    request = doc_request(
        "PUT",
        "/examplebucket/chunkObject.txt",
        host="s3.amazonaws.com",
        x_amz_date="20130524T000000Z",
        x_amz_storage_class="REDUCED_REDUNDANCY",
        x_amz_content_sha256="STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        content_encoding="aws-chunked",
        x_amz_decoded_content_length="66560",
        content_length="66824",
        authorization=f"AWS4-HMAC-SHA256 Credential={DOC_SCOPE},SignedHeaders="
        "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class,Signature="
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    )
    signatures = [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ]
    body = (
        f"10000;chunk-signature={signatures[0]}\r\n".encode()
        + b"a" * 65536
        + f"\r\n400;chunk-signature={signatures[1]}\r\n".encode()
        + b"a" * 1024
        + f"\r\n0;chunk-signature={signatures[2]}\r\n\r\n".encode()
    )
    assert len(body) == 66824

    def decode(data: bytes) -> bytes:
        identity = Verifier([DOC_KEY], "us-east-1").verify(request, DOC_TIME)
        reader = AwsChunkedReader(
            io.BytesIO(data), 66560, identity.chunk_signer, trailer=False
        )
        return reader.read()

    assert decode(body) == b"a" * 66560
    tampered = body.replace(b"a", b"b", 1)
    with pytest.raises(SignatureDoesNotMatch):
        decode(tampered)


# -- botocore-signed requests, tampered -------------------------------------------


@pytest.fixture
def bucket(api: Api) -> str:
    assert api.request("PUT", "/sig-bucket").status_code == 200
    return "sig-bucket"


def code_of(result) -> str:
    return result.text.split("<Code>")[1].split("</Code>")[0]


def test_a_valid_request_passes_and_carries_a_request_id(api, bucket):
    result = api.request("GET", f"/{bucket}")
    assert result.status_code == 200
    assert len(result.headers["x-amz-request-id"]) == 16


@pytest.mark.parametrize(
    ("tamper", "code", "status"),
    [
        (
            lambda h: h.update({"X-Amz-Date": "20000101T000000Z"}),
            "RequestTimeTooSkewed",
            403,
        ),
        (lambda h: h.pop("Authorization"), "AccessDenied", 403),
        (lambda h: h.pop("X-Amz-Content-SHA256"), "InvalidRequest", 400),
        (lambda h: h.update({"X-Amz-Content-SHA256": "bogus"}), "InvalidArgument", 400),
        (lambda h: h.update({"x-amz-meta-added": "later"}), "AccessDenied", 403),
        (
            lambda h: h.update({"Authorization": "AWS4-HMAC-SHA256 garbage"}),
            "AuthorizationHeaderMalformed",
            400,
        ),
        (lambda h: h.update({"Authorization": "Bearer token"}), "InvalidArgument", 400),
        (
            lambda h: h.update(
                {
                    "Authorization": h["Authorization"].replace(
                        "Signature=", "Signature=0"
                    )
                }
            ),
            "SignatureDoesNotMatch",
            403,
        ),
        (
            lambda h: h.update(
                {"Authorization": h["Authorization"].replace("host;", "")}
            ),
            "AuthorizationHeaderMalformed",
            400,
        ),
    ],
)
def test_tampered_requests_are_refused(api, bucket, tamper, code, status):
    result = api.request("GET", f"/{bucket}", tamper=tamper)
    assert (code_of(result), result.status_code) == (code, status)
    assert result.headers["x-amz-request-id"]


def test_a_changed_path_query_or_signed_header_breaks_the_signature(api, bucket):
    good = api.request("GET", f"/{bucket}", "prefix=a", headers={"Range": "bytes=0-1"})
    assert good.status_code == 200
    signed = api.request(
        "GET",
        f"/{bucket}",
        "prefix=a",
        headers={"Range": "bytes=0-1"},
        tamper=lambda h: h.update({"Range": "bytes=0-2"}),
    )
    assert code_of(signed) == "SignatureDoesNotMatch"
    for path, query in ((f"/{bucket}x", "prefix=a"), (f"/{bucket}", "prefix=b")):
        headers = {}
        api.request("GET", f"/{bucket}", "prefix=a", tamper=headers.update)
        result = api.send("GET", path, query, headers, b"")
        assert code_of(result) == "SignatureDoesNotMatch", (path, query)


def test_unknown_key_wrong_secret_and_wrong_region(api, bucket):
    result = api.request("GET", f"/{bucket}", access_key="AKIDNOBODY")
    assert (code_of(result), result.status_code) == ("InvalidAccessKeyId", 403)
    result = api.request("GET", f"/{bucket}", secret_key="not the secret")
    assert (code_of(result), result.status_code) == ("SignatureDoesNotMatch", 403)
    result = api.request("GET", f"/{bucket}", region="eu-west-1")
    assert (code_of(result), result.status_code) == (
        "AuthorizationHeaderMalformed",
        400,
    )
    assert "<Region>us-east-1</Region>" in result.text


def test_clock_skew_is_limited_to_15_minutes(api, bucket):
    api.skew = timedelta(minutes=14)
    assert api.request("GET", f"/{bucket}").status_code == 200
    api.skew = timedelta(minutes=16)
    assert code_of(api.request("GET", f"/{bucket}")) == "RequestTimeTooSkewed"


def test_payload_hash_mismatch_stores_nothing(api, bucket):
    before = api.store.stats()
    result = api.request(
        "PUT", f"/{bucket}/k", body=b"signed body", send_body=b"other body!"
    )
    assert (code_of(result), result.status_code) == ("XAmzContentSHA256Mismatch", 400)
    assert api.request("GET", f"/{bucket}/k").status_code == 404
    assert api.store.stats() == before


def test_unsigned_payload(api, bucket):
    result = api.request(
        "PUT", f"/{bucket}/k", body=b"any body", payload="UNSIGNED-PAYLOAD"
    )
    assert result.status_code == 200
    assert api.request("GET", f"/{bucket}/k").content == b"any body"


def test_presigned_requests_and_their_expiry(api, bucket):
    api.request("PUT", f"/{bucket}/k", body=b"shared")
    path, query = api.presign("GET", f"/{bucket}/k", expires=60)
    assert api.send("GET", path, query, {}, b"").content == b"shared"
    api.skew = timedelta(seconds=61)
    expired = api.send("GET", path, query, {}, b"")
    assert (code_of(expired), expired.status_code) == ("AccessDenied", 403)
    assert "expired" in expired.text
    api.skew = timedelta(0)
    for expires in (0, -1, 604801):
        path, query = api.presign("GET", f"/{bucket}/k", expires=expires)
        result = api.send("GET", path, query, {}, b"")
        assert (code_of(result), result.status_code) == ("AccessDenied", 403), expires
    path, query = api.presign("GET", f"/{bucket}/k", expires=604800)
    assert api.send("GET", path, query, {}, b"").status_code == 200
    path, query = api.presign("GET", f"/{bucket}/k", secret_key="wrong")
    assert code_of(api.send("GET", path, query, {}, b"")) == "SignatureDoesNotMatch"
    path, query = api.presign("GET", f"/{bucket}/k")
    result = api.send("GET", f"/{bucket}/other", query, {}, b"")
    assert code_of(result) == "SignatureDoesNotMatch"
    both = api.request("GET", path, query)
    assert (code_of(both), both.status_code) == ("InvalidArgument", 400)


def test_sigv2_presigned_and_header(api, bucket):
    from botocore.auth import HmacV1Auth
    from botocore.auth import HmacV1QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from tests.s3.signing import ACCESS_KEY
    from tests.s3.signing import SECRET_KEY

    api.request("PUT", f"/{bucket}/k", body=b"v2")
    request = AWSRequest(method="GET", url=f"http://s3.test/{bucket}/k")
    HmacV1QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), expires=60).add_auth(request)
    query = request.url.split("?", 1)[1]
    assert api.send("GET", f"/{bucket}/k", query, {}, b"").content == b"v2"
    api.skew = timedelta(seconds=120)
    assert code_of(api.send("GET", f"/{bucket}/k", query, {}, b"")) == "AccessDenied"
    api.skew = timedelta(0)
    request = AWSRequest(method="GET", url=f"http://s3.test/{bucket}/k")
    HmacV1Auth(Credentials(ACCESS_KEY, SECRET_KEY)).add_auth(request)
    assert (
        api.send("GET", f"/{bucket}/k", "", dict(request.headers), b"").content == b"v2"
    )
    HmacV1Auth(Credentials(ACCESS_KEY, "wrong")).add_auth(request)
    result = api.send("GET", f"/{bucket}/k", "", dict(request.headers), b"")
    assert code_of(result) == "SignatureDoesNotMatch"


def test_keys_are_signed_as_clients_encode_them(api, bucket):
    for key in ("a b+c", "ünï/日本", "x%2Fy", "~tilde!*'()", "semi;colon=eq&amp"):
        from urllib.parse import quote

        path = f"/{bucket}/{quote(key, safe='/~')}"
        assert api.request("PUT", path, body=key.encode()).status_code == 200, key
        assert api.request("GET", path).content == key.encode()
    listed = api.request("GET", f"/{bucket}", "prefix=x")
    assert "<Key>x%2Fy</Key>" in listed.text
    # An encoded slash in the path is a slash in the key, as in S3.
    assert api.request("PUT", f"/{bucket}/p%2Fq", body=b"pq").status_code == 200
    assert api.request("GET", f"/{bucket}/p/q").content == b"pq"


def test_another_owners_bucket_is_not_yours(api, bucket):
    result = api.request(
        "GET", f"/{bucket}", access_key=OTHER_KEY, secret_key=OTHER_SECRET
    )
    assert (code_of(result), result.status_code) == ("AccessDenied", 403)
    result = api.request(
        "PUT", f"/{bucket}", access_key=OTHER_KEY, secret_key=OTHER_SECRET
    )
    assert (code_of(result), result.status_code) == ("BucketAlreadyExists", 409)
