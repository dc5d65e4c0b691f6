"""Object listings: ListObjects (v1), ListObjectsV2 and ListObjectVersions.

All three are pages of :meth:`ObjectStore.list_objects` (catalog range
queries that skip over common prefixes). Buckets are unversioned, so
ListObjectVersions lists every object once, as version ``null``.
"""

from __future__ import annotations

import falcon

from blobstore.records import ObjectRecord
from blobstore.s3.listing import Page
from blobstore_api.s3 import xml
from blobstore_api.s3.buckets import owner_xml
from blobstore_api.s3.context import Context
from blobstore_api.s3.errors import InvalidArgument
from blobstore_api.s3.tokens import continuation_token
from blobstore_api.s3.tokens import resume_after

__all__ = ["list_objects_v1", "list_objects_v2", "list_versions"]

MAX_KEYS = 1000


def _common(ctx: Context) -> tuple[str, str, int, str | None]:
    encoding = ctx.query.get("encoding-type")
    if encoding is not None and encoding != "url":
        raise InvalidArgument(
            "Invalid Encoding Method specified in Request",
            ArgumentName="encoding-type",
            ArgumentValue=encoding,
        )
    return (
        ctx.query.get("prefix", ""),
        ctx.query.get("delimiter", ""),
        ctx.int_param("max-keys", MAX_KEYS, 0, MAX_KEYS),
        encoding,
    )


def _next_marker(page: Page[ObjectRecord]) -> str | None:
    if not page.truncated:
        return None
    if page.ends_with_prefix:
        return page.last_prefix
    return page.last_item.key if page.last_item is not None else None


def _contents(
    tag: str, page: Page[ObjectRecord], enc, owner: str | None, versions: bool = False
) -> list[tuple[str, object]]:
    entries: list[tuple[str, object]] = []
    for r in page.items:
        fields: list[tuple[str, object]] = [("Key", enc(r.key))]
        if versions:
            fields += [("VersionId", "null"), ("IsLatest", True)]
        fields += [
            ("LastModified", r.mtime),
            ("ETag", f'"{r.etag}"'),
            ("Size", r.size),
            ("Owner", owner_xml(owner) if owner is not None else None),
            ("StorageClass", "STANDARD"),
        ]
        entries.append((tag, fields))
    entries += [("CommonPrefixes", [("Prefix", enc(p))]) for p in page.prefixes]
    return entries


def _respond(resp: falcon.Response, root: str, children) -> None:
    resp.content_type = "application/xml"
    resp.data = xml.document(root, children)


def list_objects_v1(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    prefix, delimiter, limit, encoding = _common(ctx)
    marker = ctx.query.get("marker", "")
    page = ctx.objects.list_objects(bucket.name, prefix, delimiter, marker, limit)
    enc = xml.url_encoder(encoding)
    _respond(
        resp,
        "ListBucketResult",
        [
            ("Name", bucket.name),
            # Not URL-encoded in v1 (botocore, the most used client, does
            # not decode it there; v2 encodes it and botocore decodes it).
            ("Prefix", xml.echoed(prefix)),
            ("Marker", enc(marker)),
            ("MaxKeys", limit),
            ("Delimiter", enc(delimiter) if delimiter else None),
            ("EncodingType", encoding),
            ("IsTruncated", page.truncated),
            # S3 sends NextMarker only with a delimiter; without one the
            # client continues from the last key.
            ("NextMarker", enc(_next_marker(page)) if delimiter else None),
            *_contents("Contents", page, enc, bucket.owner),
        ],
    )


def list_objects_v2(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    prefix, delimiter, limit, encoding = _common(ctx)
    token = ctx.query.get("continuation-token")
    start_after = ctx.query.get("start-after")
    if token is not None:
        if not token:
            raise InvalidArgument(
                "The continuation token provided is incorrect",
                ArgumentName="continuation-token",
            )
        marker = resume_after(token)
    else:
        marker = start_after or ""
    page = ctx.objects.list_objects(bucket.name, prefix, delimiter, marker, limit)
    enc = xml.url_encoder(encoding)
    owner = bucket.owner if ctx.query.get("fetch-owner") == "true" else None
    next_marker = _next_marker(page)
    _respond(
        resp,
        "ListBucketResult",
        [
            ("Name", bucket.name),
            ("Prefix", enc(prefix)),
            ("Delimiter", enc(delimiter) if delimiter else None),
            ("MaxKeys", limit),
            ("EncodingType", encoding),
            ("KeyCount", page.count),
            ("IsTruncated", page.truncated),
            ("ContinuationToken", token),
            (
                "NextContinuationToken",
                continuation_token(next_marker) if next_marker else None,
            ),
            ("StartAfter", enc(start_after) if start_after is not None else None),
            *_contents("Contents", page, enc, owner),
        ],
    )


def list_versions(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    prefix, delimiter, limit, encoding = _common(ctx)
    key_marker = ctx.query.get("key-marker", "")
    version_marker = ctx.query.get("version-id-marker")
    if version_marker and not key_marker:
        raise InvalidArgument(
            "A version-id marker cannot be specified without a key marker.",
            ArgumentName="version-id-marker",
            ArgumentValue=version_marker,
        )
    page = ctx.objects.list_objects(bucket.name, prefix, delimiter, key_marker, limit)
    enc = xml.url_encoder(encoding)
    next_marker = _next_marker(page)
    _respond(
        resp,
        "ListVersionsResult",
        [
            ("Name", bucket.name),
            ("Prefix", enc(prefix)),
            ("KeyMarker", enc(key_marker)),
            ("VersionIdMarker", version_marker or ""),
            ("MaxKeys", limit),
            ("Delimiter", enc(delimiter) if delimiter else None),
            ("EncodingType", encoding),
            ("IsTruncated", page.truncated),
            ("NextKeyMarker", enc(next_marker) if next_marker else None),
            (
                "NextVersionIdMarker",
                "null" if next_marker and not page.ends_with_prefix else None,
            ),
            *_contents("Version", page, enc, bucket.owner, versions=True),
        ],
    )
