"""Buckets through boto3 (default settings) against the real server."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.s3.conftest import boto3_client


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def status(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_create_head_list_and_delete_a_bucket(s3):
    s3.create_bucket(Bucket="lifecycle-bucket")
    head = s3.head_bucket(Bucket="lifecycle-bucket")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "lifecycle-bucket" in names
    assert (
        s3.get_bucket_location(Bucket="lifecycle-bucket")["LocationConstraint"] is None
    )
    s3.delete_bucket(Bucket="lifecycle-bucket")
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket="lifecycle-bucket")
    assert status(exc) == 404


def test_recreating_your_own_bucket_succeeds(s3, bucket):
    s3.create_bucket(Bucket=bucket)
    s3.head_bucket(Bucket=bucket)


def test_someone_elses_bucket_name_is_taken(s3, s3_server, bucket):
    other = boto3_client(s3_server, "AKIDOTHEROWNER", "other-secret")
    with pytest.raises(ClientError) as exc:
        other.create_bucket(Bucket=bucket)
    assert error_code(exc) == "BucketAlreadyExists"
    assert status(exc) == 409
    with pytest.raises(ClientError) as exc:
        other.list_objects_v2(Bucket=bucket)
    assert error_code(exc) == "AccessDenied"
    assert bucket not in [b["Name"] for b in other.list_buckets()["Buckets"]]


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "UPPER",
        "under_score",
        "-leading",
        "trailing-",
        "two..dots",
        "192.168.5.4",
        "a" * 64,
        "xn--punycode",
        "dot-.dash",
    ],
)
def test_bucket_naming_rules(s3, name):
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=name)
    assert error_code(exc) == "InvalidBucketName"


def test_bucket_not_empty_until_its_objects_are_gone(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=bucket)
    assert error_code(exc) == "BucketNotEmpty"
    s3.delete_object(Bucket=bucket, Key="k")
    # An incomplete multipart upload alone does not block deletion.
    s3.create_multipart_upload(Bucket=bucket, Key="pending")
    s3.delete_bucket(Bucket=bucket)


def test_no_such_bucket(s3):
    with pytest.raises(ClientError) as exc:
        s3.list_objects_v2(Bucket="no-such-bucket-here")
    assert error_code(exc) == "NoSuchBucket"
    assert exc.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]


def test_list_buckets_pages(s3):
    for i in range(3):
        s3.create_bucket(Bucket=f"paged-{i}")
    page = s3.list_buckets(MaxBuckets=2, Prefix="paged-")
    assert [b["Name"] for b in page["Buckets"]] == ["paged-0", "paged-1"]
    rest = s3.list_buckets(
        MaxBuckets=2, Prefix="paged-", ContinuationToken=page["ContinuationToken"]
    )
    assert [b["Name"] for b in rest["Buckets"]] == ["paged-2"]
    assert "ContinuationToken" not in rest


def test_versioning_and_acl_answers(s3, bucket):
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert acl["Grants"][0]["Permission"] == "FULL_CONTROL"
    s3.put_bucket_acl(Bucket=bucket, ACL="private")


def test_location_constraint_must_be_this_region(s3):
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(
            Bucket="elsewhere",
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
        )
    assert error_code(exc) == "InvalidLocationConstraint"
    s3.create_bucket(
        Bucket="right-here",
        CreateBucketConfiguration={"LocationConstraint": "us-east-1"},
    )
