"""Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
GetBucketLocation, GetBucketVersioning, and the ACL calls clients make
(answered with the one owner; canned ACL headers are accepted and ignored)."""

from __future__ import annotations

import falcon

from blobstore_api.s3 import xml
from blobstore_api.s3.context import Context
from blobstore_api.s3.errors import InvalidLocationConstraint
from blobstore_api.s3.errors import MalformedXML
from blobstore_api.s3.tokens import continuation_token
from blobstore_api.s3.tokens import resume_after

__all__ = [
    "create_bucket",
    "delete_bucket",
    "get_acl",
    "get_location",
    "get_versioning",
    "head_bucket",
    "list_buckets",
    "owner_xml",
    "put_acl",
]

_SMALL_BODY = 64 * 1024


def owner_xml(owner: str) -> list[tuple[str, str]]:
    return [("ID", owner), ("DisplayName", owner)]


def list_buckets(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    limit = ctx.int_param("max-buckets", 10000, 1, 10000)
    prefix = ctx.query.get("prefix", "")
    region = ctx.query.get("bucket-region")
    token = ctx.query.get("continuation-token")
    after = resume_after(token) if token else ""
    buckets = [
        b
        for b in ctx.objects.list_buckets(ctx.owner)
        if b.name.startswith(prefix)
        and b.name > after
        and (region is None or b.region == region)
    ]
    page = buckets[:limit]
    truncated = len(buckets) > limit
    resp.content_type = "application/xml"
    resp.data = xml.document(
        "ListAllMyBucketsResult",
        [
            ("Owner", owner_xml(ctx.owner)),
            (
                "Buckets",
                [
                    (
                        "Bucket",
                        [
                            ("Name", b.name),
                            ("CreationDate", b.created),
                            ("BucketRegion", b.region),
                        ],
                    )
                    for b in page
                ],
            ),
            (
                "ContinuationToken",
                continuation_token(page[-1].name) if truncated else None,
            ),
            ("Prefix", prefix if "prefix" in ctx.query else None),
        ],
    )


def create_bucket(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    body = ctx.body(req).read_all(_SMALL_BODY, MalformedXML)
    if body.strip():
        try:
            root = xml.parse(body, "CreateBucketConfiguration")
        except xml.MalformedXMLError as exc:
            raise MalformedXML(str(exc)) from None
        constraint = xml.find_text(root, "LocationConstraint")
        if constraint and constraint != ctx.config.region:
            raise InvalidLocationConstraint(
                f"The specified location-constraint {constraint!r} is not valid: "
                f"this service is in {ctx.config.region!r}",
                LocationConstraint=constraint,
            )
    # Re-creating one's own bucket succeeds, as in us-east-1.
    ctx.objects.create_bucket(ctx.bucket, ctx.owner, ctx.config.region)
    resp.set_header("Location", f"/{ctx.bucket}")
    resp.status = falcon.HTTP_200


def head_bucket(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    resp.set_header("x-amz-bucket-region", bucket.region)
    resp.status = falcon.HTTP_200


def delete_bucket(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    ctx.owned_bucket()
    ctx.objects.delete_bucket(ctx.bucket)
    resp.status = falcon.HTTP_204


def get_location(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    # us-east-1 is reported as an empty constraint, as S3 does.
    region = "" if bucket.region == "us-east-1" else bucket.region
    resp.content_type = "application/xml"
    resp.data = xml.document("LocationConstraint", region)


def get_versioning(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    ctx.owned_bucket()
    resp.content_type = "application/xml"
    resp.data = xml.document("VersioningConfiguration")


def get_acl(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    if ctx.target.key is not None:
        ctx.objects.get_object(bucket.name, ctx.key)
    resp.content_type = "application/xml"
    resp.data = xml.document(
        "AccessControlPolicy",
        [
            ("Owner", owner_xml(bucket.owner)),
            (
                "AccessControlList",
                [
                    (
                        "Grant",
                        [
                            (
                                "Grantee",
                                (
                                    {xml.XSI_TYPE: "CanonicalUser"},
                                    owner_xml(bucket.owner),
                                ),
                            ),
                            ("Permission", "FULL_CONTROL"),
                        ],
                    )
                ],
            ),
        ],
    )


def put_acl(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    # One owner per bucket: ACLs are accepted and ignored.
    bucket = ctx.owned_bucket()
    if ctx.target.key is not None:
        ctx.objects.get_object(bucket.name, ctx.key)
    ctx.body(req).read_all(_SMALL_BODY, MalformedXML)
    resp.status = falcon.HTTP_200
