"""Objects through boto3 (default settings: CRC32 checksums, 100-continue,
signed payloads) against the real server."""

from __future__ import annotations

import hashlib
import http.client
import io
import random
import threading
import urllib.error
import urllib.request
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.s3.conftest import boto3_client
from tests.s3.test_boto3_buckets import error_code
from tests.s3.test_boto3_buckets import status

MiB = 1024 * 1024


def test_put_get_head_with_metadata_and_standard_headers(s3, bucket):
    put = s3.put_object(
        Bucket=bucket,
        Key="docs/readme.txt",
        Body=b"hello world",
        ContentType="text/plain",
        CacheControl="max-age=60",
        ContentDisposition='attachment; filename="r.txt"',
        ContentEncoding="identity",
        ContentLanguage="en",
        Expires=datetime(2030, 1, 1, tzinfo=UTC),
        Metadata={"Color": "blue", "count": "3"},
        ACL="private",
    )
    md5 = hashlib.md5(b"hello world").hexdigest()
    assert put["ETag"] == f'"{md5}"'
    assert put["ChecksumCRC32"]  # boto3 sent one; it was verified and echoed
    got = s3.get_object(Bucket=bucket, Key="docs/readme.txt")
    assert got["Body"].read() == b"hello world"
    assert got["ETag"] == f'"{md5}"'
    assert got["ContentType"] == "text/plain"
    assert got["CacheControl"] == "max-age=60"
    assert got["ContentDisposition"] == 'attachment; filename="r.txt"'
    assert got["ContentEncoding"] == "identity"
    assert got["ContentLanguage"] == "en"
    assert got["Metadata"] == {"color": "blue", "count": "3"}
    assert got["ContentLength"] == 11
    head = s3.head_object(Bucket=bucket, Key="docs/readme.txt")
    assert head["ContentLength"] == 11
    assert head["Metadata"] == {"color": "blue", "count": "3"}
    assert abs(head["LastModified"] - datetime.now(UTC)) < timedelta(minutes=1)


def test_response_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ContentType="text/plain")
    got = s3.get_object(
        Bucket=bucket,
        Key="k",
        ResponseContentType="application/json",
        ResponseContentDisposition="inline",
        ResponseCacheControl="no-cache",
        ResponseContentLanguage="fr",
        ResponseContentEncoding="gzip",
        ResponseExpires=datetime(2031, 1, 1, tzinfo=UTC),
    )
    assert got["ContentType"] == "application/json"
    assert got["ContentDisposition"] == "inline"
    assert got["CacheControl"] == "no-cache"
    assert got["ContentLanguage"] == "fr"
    assert got["ContentEncoding"] == "gzip"


def test_missing_key(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="nope")
    assert error_code(exc) == "NoSuchKey"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="nope")
    assert status(exc) == 404


def test_ranged_get(s3, bucket):
    data = bytes(range(256)) * 40
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    for header, (first, last) in {
        "bytes=0-9": (0, 9),
        "bytes=100-": (100, len(data) - 1),
        "bytes=-10": (len(data) - 10, len(data) - 1),
        "bytes=10000-99999": (10000, len(data) - 1),
    }.items():
        got = s3.get_object(Bucket=bucket, Key="r", Range=header)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["ContentRange"] == f"bytes {first}-{last}/{len(data)}"
        assert got["Body"].read() == data[first : last + 1]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(data)}-")
    assert error_code(exc) == "InvalidRange"
    assert status(exc) == 416


def test_conditional_get_and_head(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"data")["ETag"]
    mtime = s3.head_object(Bucket=bucket, Key="c")["LastModified"]
    later, earlier = mtime + timedelta(hours=1), mtime - timedelta(hours=1)
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"data"
    for kwargs in ({"IfNoneMatch": etag}, {"IfModifiedSince": later}):
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket=bucket, Key="c", **kwargs)
        assert status(exc) == 304
    for kwargs in ({"IfMatch": '"0000"'}, {"IfUnmodifiedSince": earlier}):
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket=bucket, Key="c", **kwargs)
        assert error_code(exc) == "PreconditionFailed"
        with pytest.raises(ClientError) as exc:
            s3.head_object(Bucket=bucket, Key="c", **kwargs)
        assert status(exc) == 412
    # If-Match true wins over If-Unmodified-Since false, as in S3.
    got = s3.get_object(Bucket=bucket, Key="c", IfMatch=etag, IfUnmodifiedSince=earlier)
    assert got["Body"].read() == b"data"


@pytest.mark.parametrize(
    "key",
    [
        "with space and +plus",
        "a%2Fb/percent",
        "ünïcødé/日本語/🎉",
        "trailing/",
        "//double//slashes",
        "quote\"'<&>",
        "k" * 1024,
        "?query=like&x",
        "tab\tnewline\n",
    ],
)
def test_arbitrary_keys_round_trip(s3, bucket, key):
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    # boto3 asks for encoding-type=url itself, and decodes the keys.
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key[:10])
    assert key in [o["Key"] for o in listed["Contents"]]
    s3.delete_object(Bucket=bucket, Key=key)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_key_too_long(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="é" * 513, Body=b"x")
    assert error_code(exc) == "KeyTooLongError"


def test_metadata_too_large(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={"big": "v" * 2100})
    assert error_code(exc) == "MetadataTooLarge"


def test_copy_object_keeps_or_replaces_metadata(s3, bucket):
    s3.put_object(
        Bucket=bucket,
        Key="src",
        Body=b"copy me",
        ContentType="text/x-a",
        Metadata={"a": "1"},
    )
    copied = s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}
    )
    assert (
        copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"copy me").hexdigest()}"'
    )
    head = s3.head_object(Bucket=bucket, Key="dst")
    assert (head["ContentType"], head["Metadata"]) == ("text/x-a", {"a": "1"})
    s3.copy_object(
        Bucket=bucket,
        Key="dst2",
        CopySource=f"{bucket}/src",
        MetadataDirective="REPLACE",
        ContentType="text/x-b",
        Metadata={"b": "2"},
    )
    head = s3.head_object(Bucket=bucket, Key="dst2")
    assert (head["ContentType"], head["Metadata"]) == ("text/x-b", {"b": "2"})
    assert s3.get_object(Bucket=bucket, Key="dst2")["Body"].read() == b"copy me"


def test_copy_onto_itself_needs_replace(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"x", Metadata={"v": "1"})
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="self", CopySource=f"{bucket}/self")
    assert error_code(exc) == "InvalidRequest"
    s3.copy_object(
        Bucket=bucket,
        Key="self",
        CopySource=f"{bucket}/self",
        MetadataDirective="REPLACE",
        Metadata={"v": "2"},
    )
    assert s3.head_object(Bucket=bucket, Key="self")["Metadata"] == {"v": "2"}


def test_copy_source_conditions(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="s", Body=b"x")["ETag"]
    source = {"Bucket": bucket, "Key": "s"}
    s3.copy_object(Bucket=bucket, Key="d", CopySource=source, CopySourceIfMatch=etag)
    future = datetime.now(UTC) + timedelta(hours=1)
    past = datetime.now(UTC) - timedelta(hours=1)
    for kwargs in (
        {"CopySourceIfMatch": '"nope"'},
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfModifiedSince": future},
        {"CopySourceIfUnmodifiedSince": past},
    ):
        with pytest.raises(ClientError) as exc:
            s3.copy_object(Bucket=bucket, Key="d", CopySource=source, **kwargs)
        assert error_code(exc) == "PreconditionFailed"
    with pytest.raises(ClientError) as exc:
        s3.copy_object(
            Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "no"}
        )
    assert error_code(exc) == "NoSuchKey"


def test_listing_v1_v2_and_versions(s3, bucket):
    keys = ["a/1", "a/2", "b/1", "c", "d/e/f", "é"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    v2 = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in v2["CommonPrefixes"]] == ["a/", "b/", "d/"]
    assert [o["Key"] for o in v2["Contents"]] == ["c", "é"]
    assert v2["KeyCount"] == 5
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}
    )
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == keys
    pages = s3.get_paginator("list_objects").paginate(
        Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 1}
    )
    seen = []
    for page in pages:
        seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        seen += [o["Key"] for o in page.get("Contents", [])]
    assert seen == ["a/", "b/", "c", "d/", "é"]
    v1 = s3.list_objects(Bucket=bucket, Prefix="a/", Marker="a/1")
    assert [o["Key"] for o in v1["Contents"]] == ["a/2"]
    versions = s3.list_object_versions(Bucket=bucket, Prefix="d/")
    assert [
        (v["Key"], v["VersionId"], v["IsLatest"]) for v in versions["Versions"]
    ] == [("d/e/f", "null", True)]
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="b/1", FetchOwner=True)
    assert [o["Key"] for o in after["Contents"]] == ["c", "d/e/f", "é"]
    assert after["Contents"][0]["Owner"]["ID"]


def test_listing_bad_parameters(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="!!not-a-token!!")
    assert error_code(exc) == "InvalidArgument"
    with pytest.raises(ClientError) as exc:
        s3.list_objects(Bucket=bucket, MaxKeys=-1)
    assert error_code(exc) == "InvalidArgument"


def test_delete_objects(s3, bucket):
    for key in ("x", "y"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"1")
    result = s3.delete_objects(
        Bucket=bucket,
        Delete={
            "Objects": [
                {"Key": "x"},
                {"Key": "y", "VersionId": "null"},
                {"Key": "never-existed"},
                {"Key": "z", "VersionId": "3HL4kqtJlcpXroDTDmJ"},
            ]
        },
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == ["never-existed", "x", "y"]
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("z", "NoSuchVersion")]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    quiet = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "x"}], "Quiet": True}
    )
    assert "Deleted" not in quiet


def test_delete_objects_limits(s3, bucket):
    with pytest.raises(ClientError) as exc:
        s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]}
        )
    assert error_code(exc) == "MalformedXML"
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": f"k{i}"} for i in range(1000)]}
    )
    assert len(result["Deleted"]) == 1000


def test_presigned_urls(s3, s3_server, bucket):
    # boto3's default presigned URLs are SigV2; SigV4 ones are tested too.
    s3v4 = boto3_client(s3_server, config=Config(signature_version="s3v4"))
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned")
    url = s3v4.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60
    )
    assert "X-Amz-Signature=" in url
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"presigned"
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60
    )
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"presigned"
    put_url = s3v4.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "q"}, ExpiresIn=60
    )
    request = urllib.request.Request(put_url, data=b"uploaded", method="PUT")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    assert s3.get_object(Bucket=bucket, Key="q")["Body"].read() == b"uploaded"
    for expires in (0, 604801, -5):
        url = s3v4.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=expires
        )
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(url)
        assert exc.value.code == 403
        assert b"<Code>AccessDenied</Code>" in exc.value.read()


def test_anonymous_and_bad_credentials_are_refused(s3_server, bucket):
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{s3_server.endpoint_url}/{bucket}")
    assert exc.value.code == 403
    assert b"<Code>AccessDenied</Code>" in exc.value.read()
    with pytest.raises(ClientError) as err:
        boto3_client(s3_server, "AKIDUNKNOWN", "x").list_buckets()
    assert error_code(err) == "InvalidAccessKeyId"
    with pytest.raises(ClientError) as err:
        boto3_client(s3_server, s3_server.access_key, "wrong").list_buckets()
    assert error_code(err) == "SignatureDoesNotMatch"


def test_same_content_under_two_keys_is_stored_once(s3, s3_server, bucket):
    size = 20 * MiB
    data = random.Random(7).randbytes(size)  # no repeats, so parts differ
    before = s3_server.stats()
    s3.put_object(Bucket=bucket, Key="one", Body=data)
    middle = s3_server.stats()
    s3.put_object(Bucket=bucket, Key="two", Body=data)
    after = s3_server.stats()
    assert middle.bytes - before.bytes == size
    assert after.bytes == middle.bytes  # the second copy took no space
    # Multipart uploads store parts: the same parts are stored once too.
    s3.upload_fileobj(io.BytesIO(data), bucket, "three")
    parts = s3_server.stats()
    assert parts.bytes - after.bytes == size
    s3.upload_fileobj(io.BytesIO(data), bucket, "four")
    assert s3_server.stats().bytes == parts.bytes
    expected = hashlib.sha256(data).hexdigest()
    for key in ("one", "two", "three", "four"):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        digest = hashlib.sha256()
        while chunk := body.read(MiB):
            digest.update(chunk)
        assert digest.hexdigest() == expected


def test_a_slow_upload_does_not_block_other_clients(s3, s3_server, bucket):
    """One client sends half a body and stalls; others are served meanwhile."""
    s3.put_object(Bucket=bucket, Key="fast", Body=b"quick")
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "slow"}, ExpiresIn=60
    )
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.putrequest("PUT", f"{parts.path}?{parts.query}")
    conn.putheader("Content-Length", "10")
    conn.endheaders()
    conn.send(b"12345")
    try:
        done = threading.Event()

        def other_client() -> None:
            for _ in range(5):
                assert (
                    s3.get_object(Bucket=bucket, Key="fast")["Body"].read() == b"quick"
                )
            done.set()

        worker = threading.Thread(target=other_client)
        worker.start()
        worker.join(timeout=30)
        assert done.is_set()
        conn.send(b"67890")
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    assert s3.get_object(Bucket=bucket, Key="slow")["Body"].read() == b"1234567890"


def test_upload_with_unknown_length_streams(s3, bucket):
    # upload_fileobj of a non-seekable stream uses multipart or chunked bodies.
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._f = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            return self._f.readinto(b)

    s3.upload_fileobj(Pipe(b"streamed" * 1000), bucket, "pipe")
    assert s3.get_object(Bucket=bucket, Key="pipe")["Body"].read() == b"streamed" * 1000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"Tagging": "a=b"},
        {"ServerSideEncryption": "AES256"},
        {
            "ObjectLockMode": "GOVERNANCE",
            "ObjectLockRetainUntilDate": datetime(2031, 1, 1),
        },
        {"IfNoneMatch": "*"},
    ],
)
def test_writes_asking_for_unsupported_features_are_refused(s3, bucket, kwargs):
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="refused", Body=b"x", **kwargs)
    assert (error_code(exc), status(exc)) == ("NotImplemented", 501)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="refused")
    assert status(exc) == 404
