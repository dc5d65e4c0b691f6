"""Multipart uploads through boto3 against the real server."""

from __future__ import annotations

import hashlib
import random

import pytest
from botocore.exceptions import ClientError

from tests.s3.test_boto3_buckets import error_code
from tests.s3.test_boto3_buckets import status

MiB = 1024 * 1024
PART = 5 * MiB


def multipart_etag(parts: list[bytes]) -> str:
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


@pytest.fixture(scope="module")
def blocks() -> list[bytes]:
    rng = random.Random(10)
    return [rng.randbytes(PART) for _ in range(3)] + [b"tail bytes"]


def start(s3, bucket: str, key: str = "big", **kwargs) -> str:
    return s3.create_multipart_upload(Bucket=bucket, Key=key, **kwargs)["UploadId"]


def upload(s3, bucket, key, upload_id, number, data) -> dict:
    etag = s3.upload_part(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
    )["ETag"]
    return {"PartNumber": number, "ETag": etag}


def complete(s3, bucket, key, upload_id, parts):
    return s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )


def test_upload_list_complete_and_read_back(s3, bucket, blocks):
    upload_id = start(s3, bucket, ContentType="text/x-big", Metadata={"m": "v"})
    parts = [
        upload(s3, bucket, "big", upload_id, i + 1, b) for i, b in enumerate(blocks)
    ]
    listed = s3.list_parts(Bucket=bucket, Key="big", UploadId=upload_id)
    assert [(p["PartNumber"], p["Size"]) for p in listed["Parts"]] == [
        (1, PART),
        (2, PART),
        (3, PART),
        (4, 10),
    ]
    page = s3.list_parts(Bucket=bucket, Key="big", UploadId=upload_id, MaxParts=2)
    assert page["IsTruncated"] and page["NextPartNumberMarker"] == 2
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("big", upload_id)]
    done = complete(s3, bucket, "big", upload_id, parts)
    assert done["ETag"] == multipart_etag(blocks)
    got = s3.get_object(Bucket=bucket, Key="big")
    assert got["Body"].read() == b"".join(blocks)
    assert (got["ContentType"], got["Metadata"]) == ("text/x-big", {"m": "v"})
    assert got["ETag"] == multipart_etag(blocks)
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    # Completing the same upload again succeeds, as in S3.
    again = complete(s3, bucket, "big", upload_id, parts)
    assert again["ETag"] == done["ETag"]


def test_get_and_head_by_part_number(s3, bucket, blocks):
    upload_id = start(s3, bucket)
    parts = [
        upload(s3, bucket, "big", upload_id, i + 1, b) for i, b in enumerate(blocks)
    ]
    complete(s3, bucket, "big", upload_id, parts)
    for number, block in enumerate(blocks, 1):
        got = s3.get_object(Bucket=bucket, Key="big", PartNumber=number)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["PartsCount"] == 4
        assert got["Body"].read() == block
    head = s3.head_object(Bucket=bucket, Key="big", PartNumber=4)
    assert head["ContentLength"] == 10
    offset = 3 * PART
    assert head["ContentRange"] == f"bytes {offset}-{offset + 9}/{offset + 10}"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="big", PartNumber=5)
    assert error_code(exc) == "InvalidPartNumber"
    assert status(exc) == 416


def test_complete_with_a_subset_of_parts_and_reuploaded_part(s3, bucket, blocks):
    upload_id = start(s3, bucket)
    upload(s3, bucket, "big", upload_id, 1, b"first version" * 1000)
    p1 = upload(s3, bucket, "big", upload_id, 1, blocks[0])  # replaces it
    upload(s3, bucket, "big", upload_id, 2, blocks[1])
    p3 = upload(s3, bucket, "big", upload_id, 3, blocks[3])
    complete(s3, bucket, "big", upload_id, [p1, p3])  # part 2 left out
    assert (
        s3.get_object(Bucket=bucket, Key="big")["Body"].read() == blocks[0] + blocks[3]
    )


def test_completion_errors(s3, bucket, blocks):
    upload_id = start(s3, bucket)
    p1 = upload(s3, bucket, "big", upload_id, 1, blocks[3])  # small
    p2 = upload(s3, bucket, "big", upload_id, 2, blocks[0])
    cases = {
        "EntityTooSmall": [p1, p2],
        "InvalidPartOrder": [p2, p1],
        "InvalidPart": [
            {"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}
        ],
    }
    for code, parts in cases.items():
        with pytest.raises(ClientError) as exc:
            complete(s3, bucket, "big", upload_id, parts)
        assert error_code(exc) == code, code
    with pytest.raises(ClientError) as exc:
        complete(s3, bucket, "big", upload_id, [{"PartNumber": 7, "ETag": p1["ETag"]}])
    assert error_code(exc) == "InvalidPart"
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="big", UploadId=upload_id, MultipartUpload={"Parts": []}
        )
    assert error_code(exc) == "MalformedXML"
    # Nothing was completed by the failures: the upload is still there.
    complete(s3, bucket, "big", upload_id, [p1])


def test_part_numbers_must_be_1_to_10000(s3, bucket):
    upload_id = start(s3, bucket)
    for number in (0, 10001):
        with pytest.raises(ClientError) as exc:
            upload(s3, bucket, "big", upload_id, number, b"x")
        assert error_code(exc) == "InvalidArgument"
    upload(s3, bucket, "big", upload_id, 10000, b"x")


def test_abort_and_no_such_upload(s3, bucket):
    upload_id = start(s3, bucket)
    upload(s3, bucket, "big", upload_id, 1, b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="big", UploadId=upload_id)
    for call in (
        lambda: s3.abort_multipart_upload(Bucket=bucket, Key="big", UploadId=upload_id),
        lambda: upload(s3, bucket, "big", upload_id, 2, b"x"),
        lambda: s3.list_parts(Bucket=bucket, Key="big", UploadId=upload_id),
        lambda: complete(
            s3, bucket, "big", upload_id, [{"PartNumber": 1, "ETag": "x"}]
        ),
        lambda: s3.list_parts(Bucket=bucket, Key="other-key", UploadId=upload_id),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == "NoSuchUpload"
        assert status(exc) == 404


def test_upload_part_copy_with_ranges(s3, bucket, blocks):
    source = b"".join(blocks)
    s3.put_object(Bucket=bucket, Key="src", Body=source)
    upload_id = start(s3, bucket, key="dst")
    whole = s3.upload_part_copy(
        Bucket=bucket,
        Key="dst",
        UploadId=upload_id,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src"},
    )["CopyPartResult"]["ETag"]
    ranged = s3.upload_part_copy(
        Bucket=bucket,
        Key="dst",
        UploadId=upload_id,
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceRange="bytes=5-14",
    )["CopyPartResult"]["ETag"]
    assert ranged == f'"{hashlib.md5(source[5:15]).hexdigest()}"'
    complete(
        s3,
        bucket,
        "dst",
        upload_id,
        [{"PartNumber": 1, "ETag": whole}, {"PartNumber": 2, "ETag": ranged}],
    )
    assert (
        s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == source + source[5:15]
    )
    upload_id = start(s3, bucket, key="bad")
    for bad_range in ("bytes=0-99999999", "bytes=10-5", "10-20"):
        with pytest.raises(ClientError) as exc:
            s3.upload_part_copy(
                Bucket=bucket,
                Key="bad",
                UploadId=upload_id,
                PartNumber=1,
                CopySource={"Bucket": bucket, "Key": "src"},
                CopySourceRange=bad_range,
            )
        assert error_code(exc) == "InvalidArgument"


def test_copy_of_a_multipart_object_shares_its_parts(s3, s3_server, bucket, blocks):
    upload_id = start(s3, bucket)
    parts = [
        upload(s3, bucket, "big", upload_id, i + 1, b) for i, b in enumerate(blocks)
    ]
    complete(s3, bucket, "big", upload_id, parts)
    before = s3_server.stats()
    s3.copy_object(
        Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "big"}
    )
    assert s3_server.stats() == before
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == b"".join(blocks)


def test_list_uploads_with_prefix_delimiter_and_markers(s3, bucket):
    ids = {}
    for key in ("a/1", "a/2", "b", "b", "c/d/e"):
        ids.setdefault(key, []).append(start(s3, bucket, key=key))
    listed = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["a/", "c/"]
    assert [(u["Key"], u["UploadId"]) for u in listed["Uploads"]] == [
        ("b", ids["b"][0]),
        ("b", ids["b"][1]),
    ]
    page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=3)
    assert page["IsTruncated"]
    assert (page["NextKeyMarker"], page["NextUploadIdMarker"]) == ("b", ids["b"][0])
    rest = s3.list_multipart_uploads(
        Bucket=bucket,
        KeyMarker=page["NextKeyMarker"],
        UploadIdMarker=page["NextUploadIdMarker"],
    )
    assert [u["UploadId"] for u in rest["Uploads"]] == [ids["b"][1], ids["c/d/e"][0]]
    prefixed = s3.list_multipart_uploads(Bucket=bucket, Prefix="a/")
    assert [u["Key"] for u in prefixed["Uploads"]] == ["a/1", "a/2"]


def test_transfer_manager_multipart_upload_and_download(s3, bucket, tmp_path):
    data = random.Random(3).randbytes(20 * MiB)
    source = tmp_path / "src.bin"
    source.write_bytes(data)
    s3.upload_file(str(source), bucket, "managed")  # multipart above 8 MiB
    assert s3.head_object(Bucket=bucket, Key="managed")["ETag"].endswith('-3"')
    target = tmp_path / "dst.bin"
    s3.download_file(bucket, "managed", str(target))  # ranged GETs in parallel
    assert target.read_bytes() == data
