"""S3 corner cases answered as AWS answers them, through boto3 against the
real server. Where the S3 API reference is silent the behaviour follows
MinIO and the ceph s3-tests suite, named in each test."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.s3.test_boto3_buckets import error_code
from tests.s3.test_boto3_buckets import status
from tests.s3.test_boto3_multipart import PART
from tests.s3.test_boto3_multipart import complete
from tests.s3.test_boto3_multipart import start
from tests.s3.test_boto3_multipart import upload

# -- listings -------------------------------------------------------------------


def test_an_empty_continuation_token_is_invalid_argument(s3, bucket):
    # MinIO (getListObjectsV2Args: "The continuation-token cannot be
    # empty") and ceph s3-tests test_bucket_listv2_continuationtoken_empty:
    # 400 InvalidArgument. Absent (not empty) is a first page.
    s3.put_object(Bucket=bucket, Key="a", Body=b"1")
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="")
    assert (status(exc), error_code(exc)) == (400, "InvalidArgument")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["a"]


@pytest.mark.parametrize("version", [1, 2])
def test_keys_and_prefixes_with_control_characters_round_trip(s3, bucket, version):
    # boto3 asks for encoding-type=url and decodes what AWS encodes: keys,
    # prefixes, delimiter, markers. A newline in a key or an echoed Prefix
    # must come back as sent (XML 1.0 cannot carry every character raw).
    keys = ["dir\nname/one two", "dir\nname/tab\there", "plain"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    lister = s3.list_objects if version == 1 else s3.list_objects_v2
    got = lister(Bucket=bucket, Prefix="dir\nname/")
    assert got["Prefix"] == "dir\nname/"
    assert sorted(o["Key"] for o in got["Contents"]) == keys[:2]
    grouped = lister(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["dir\nname/"]
    assert grouped["Delimiter"] == "/"
    first = lister(Bucket=bucket, MaxKeys=1, Prefix="dir\nname/")
    assert first["IsTruncated"]
    if version == 2:
        rest = s3.list_objects_v2(
            Bucket=bucket,
            Prefix="dir\nname/",
            ContinuationToken=first["NextContinuationToken"],
            StartAfter="dir\nname/",
        )
        assert [o["Key"] for o in rest["Contents"]] == [keys[1]]
        assert rest["StartAfter"] == "dir\nname/"
    else:
        rest = s3.list_objects(
            Bucket=bucket, Prefix="dir\nname/", Marker=first["Contents"][0]["Key"]
        )
        assert rest["Marker"] == keys[0]
        assert [o["Key"] for o in rest["Contents"]] == [keys[1]]


def test_url_encoding_touches_only_the_fields_aws_encodes(s3, bucket):
    # The raw document: with encoding-type=url the key, prefix and
    # start-after are encoded, form-style as AWS does (a space is "+", a
    # "+" is "%2B"); the continuation tokens are not (they are already
    # URL-safe and opaque), nor is EncodingType.
    s3.put_object(Bucket=bucket, Key="a b", Body=b"x")
    s3.put_object(Bucket=bucket, Key="a+c", Body=b"x")
    raw = {}

    def keep(http_response, **kwargs):
        raw["body"] = http_response.content.decode()

    s3.meta.events.register("after-call.s3.ListObjectsV2", keep)
    first = s3.list_objects_v2(Bucket=bucket, MaxKeys=1, StartAfter="a")
    assert "<Key>a+b</Key>" in raw["body"]
    assert "<StartAfter>a</StartAfter>" in raw["body"]
    assert first["Contents"][0]["Key"] == "a b"  # decoded back by boto3
    token = first["NextContinuationToken"]
    assert f"<NextContinuationToken>{token}</NextContinuationToken>" in raw["body"]
    assert "<EncodingType>url</EncodingType>" in raw["body"]
    second = s3.list_objects_v2(Bucket=bucket, ContinuationToken=token)
    assert "<Key>a%2Bc</Key>" in raw["body"]
    assert f"<ContinuationToken>{token}</ContinuationToken>" in raw["body"]
    assert second["Contents"][0]["Key"] == "a+c"
    rest = s3.list_objects_v2(Bucket=bucket, Prefix="a ", StartAfter="a ")
    assert "<Prefix>a+</Prefix>" in raw["body"]
    assert "<StartAfter>a+</StartAfter>" in raw["body"]
    assert rest["Prefix"] == "a "


# -- parts ------------------------------------------------------------------------


def test_part_number_beyond_the_parts_is_invalid_part_number_416(s3, bucket):
    # AWS, MinIO (ErrInvalidPartNumberRange) and Swift's s3api agree: 416
    # InvalidPartNumber "The requested partnumber is not satisfiable".
    s3.put_object(Bucket=bucket, Key="single", Body=b"0123456789")
    whole = s3.get_object(Bucket=bucket, Key="single", PartNumber=1)
    assert whole["Body"].read() == b"0123456789"
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as exc:
            call(Bucket=bucket, Key="single", PartNumber=2)
        assert status(exc) == 416
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="single", PartNumber=2)
    assert error_code(exc) == "InvalidPartNumber"


def test_a_copy_range_outside_the_source_is_invalid_argument(s3, bucket):
    # AWS answers 400 InvalidArgument "Range specified is not valid for
    # source object of size: N" (so do MinIO, ErrInvalidCopyPartRangeSource,
    # and every S3 server we compared), not 416.
    s3.put_object(Bucket=bucket, Key="src", Body=b"x" * 100)
    upload_id = start(s3, bucket, key="dst")
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(
            Bucket=bucket,
            Key="dst",
            UploadId=upload_id,
            PartNumber=1,
            CopySource={"Bucket": bucket, "Key": "src"},
            CopySourceRange="bytes=50-100",
        )
    assert (status(exc), error_code(exc)) == (400, "InvalidArgument")
    message = exc.value.response["Error"]["Message"]
    assert message == "Range specified is not valid for source object of size: 100"


def test_the_last_upload_of_a_part_wins(s3, bucket):
    upload_id = start(s3, bucket, key="twice")
    old = upload(s3, bucket, "twice", upload_id, 1, b"a" * PART)
    new = upload(s3, bucket, "twice", upload_id, 1, b"b" * PART)
    tail = upload(s3, bucket, "twice", upload_id, 2, b"tail")
    with pytest.raises(ClientError) as exc:  # the replaced copy is gone
        complete(s3, bucket, "twice", upload_id, [old, tail])
    assert error_code(exc) == "InvalidPart"
    complete(s3, bucket, "twice", upload_id, [new, tail])
    body = s3.get_object(Bucket=bucket, Key="twice")["Body"].read()
    assert body == b"b" * PART + b"tail"


def test_a_part_listed_twice_is_invalid_part_order(s3, bucket):
    # AWS requires strictly ascending part numbers in the completion.
    upload_id = start(s3, bucket, key="dup")
    one = upload(s3, bucket, "dup", upload_id, 1, b"a" * PART)
    two = upload(s3, bucket, "dup", upload_id, 2, b"tail")
    with pytest.raises(ClientError) as exc:
        complete(s3, bucket, "dup", upload_id, [one, one, two])
    assert (status(exc), error_code(exc)) == (400, "InvalidPartOrder")
    complete(s3, bucket, "dup", upload_id, [one, two])  # the upload is intact
