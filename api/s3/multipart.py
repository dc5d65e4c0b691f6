"""Multipart uploads: Create, UploadPart, UploadPartCopy, ListParts,
ListMultipartUploads, Complete and Abort.

Parts are stored as blobs as they arrive; completing records the part index
as the object's content (no data is re-read), with the ETag
``md5(part md5s)-N``.
"""

from __future__ import annotations

import falcon

from blobstore_api.s3 import xml
from blobstore_api.s3.buckets import owner_xml
from blobstore_api.s3.conditions import parse_copy_range
from blobstore_api.s3.context import Context
from blobstore_api.s3.context import parse_part_number
from blobstore_api.s3.errors import InvalidArgument
from blobstore_api.s3.errors import MalformedXML
from blobstore_api.s3.metadata import request_meta
from blobstore_api.s3.objects import copy_source
from blobstore_api.s3.objects import refuse_unsupported_headers

__all__ = [
    "abort_upload",
    "complete_upload",
    "create_upload",
    "list_parts",
    "list_uploads",
    "upload_part",
]

MAX_LIST = 1000
# 10000 parts with ETags and checksums fit comfortably.
_COMPLETE_BODY_LIMIT = 8 * 1024 * 1024


def _xml(resp: falcon.Response, root: str, children) -> None:
    resp.content_type = "application/xml"
    resp.data = xml.document(root, children)


def create_upload(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    refuse_unsupported_headers(req)
    upload = ctx.objects.create_upload(
        bucket.name, ctx.key, ctx.owner, request_meta(req)
    )
    algorithm = req.get_header("x-amz-checksum-algorithm")
    if algorithm:
        resp.set_header("x-amz-checksum-algorithm", algorithm)
    _xml(
        resp,
        "InitiateMultipartUploadResult",
        [("Bucket", bucket.name), ("Key", ctx.key), ("UploadId", upload.id)],
    )


def _part_number(ctx: Context) -> int:
    return parse_part_number(ctx.query.get("partNumber", ""))


def upload_part(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    number = _part_number(ctx)
    bucket = ctx.owned_bucket()
    upload = ctx.objects.get_upload(bucket.name, ctx.key, ctx.query["uploadId"])
    if req.get_header("x-amz-copy-source") is not None:
        source = copy_source(ctx, req)
        selected = req.get_header("x-amz-copy-source-range")
        first = last = None
        if selected is not None:
            first, last = parse_copy_range(selected, source.size)
        part = ctx.objects.copy_part(upload, number, source, first, last)
        _xml(
            resp,
            "CopyPartResult",
            [("LastModified", part.mtime), ("ETag", f'"{part.md5}"')],
        )
        return
    body = ctx.body(req)
    body.require_length()
    part = ctx.objects.put_part(upload, number, body.stream, body.size)
    resp.set_header("ETag", f'"{part.md5}"')
    for name, value in body.checksums().items():
        resp.set_header(name, value)
    resp.status = falcon.HTTP_200


def list_parts(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    upload = ctx.objects.get_upload(bucket.name, ctx.key, ctx.query["uploadId"])
    after = ctx.int_param("part-number-marker", 0, 0)
    limit = ctx.int_param("max-parts", MAX_LIST, 0, MAX_LIST)
    parts, truncated = ctx.objects.list_parts(upload, after, limit)
    _xml(
        resp,
        "ListPartsResult",
        [
            ("Bucket", bucket.name),
            ("Key", ctx.key),
            ("UploadId", upload.id),
            ("Initiator", owner_xml(upload.owner)),
            ("Owner", owner_xml(bucket.owner)),
            ("StorageClass", "STANDARD"),
            ("PartNumberMarker", after),
            ("NextPartNumberMarker", parts[-1].number if parts else after),
            ("MaxParts", limit),
            ("IsTruncated", truncated),
            *(
                (
                    "Part",
                    [
                        ("PartNumber", p.number),
                        ("LastModified", p.mtime),
                        ("ETag", f'"{p.md5}"'),
                        ("Size", p.size),
                    ],
                )
                for p in parts
            ),
        ],
    )


def list_uploads(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    encoding = ctx.query.get("encoding-type")
    if encoding is not None and encoding != "url":
        raise InvalidArgument(
            "Invalid Encoding Method specified in Request",
            ArgumentName="encoding-type",
            ArgumentValue=encoding,
        )
    prefix = ctx.query.get("prefix", "")
    delimiter = ctx.query.get("delimiter", "")
    key_marker = ctx.query.get("key-marker", "")
    id_marker = ctx.query.get("upload-id-marker", "")
    limit = ctx.int_param("max-uploads", MAX_LIST, 0, MAX_LIST)
    page = ctx.objects.list_uploads(
        bucket.name, prefix, delimiter, key_marker, id_marker, limit
    )
    enc = xml.url_encoder(encoding)
    next_key = next_id = None
    if page.truncated and page.ends_with_prefix:
        next_key = page.last_prefix
    elif page.truncated and page.last_item is not None:
        next_key, next_id = page.last_item.key, page.last_item.id
    _xml(
        resp,
        "ListMultipartUploadsResult",
        [
            ("Bucket", bucket.name),
            ("KeyMarker", enc(key_marker)),
            ("UploadIdMarker", id_marker),
            ("NextKeyMarker", enc(next_key) if next_key is not None else None),
            ("NextUploadIdMarker", next_id),
            ("Prefix", enc(prefix)),
            ("Delimiter", enc(delimiter) if delimiter else None),
            ("MaxUploads", limit),
            ("EncodingType", encoding),
            ("IsTruncated", page.truncated),
            *(
                (
                    "Upload",
                    [
                        ("Key", enc(u.key)),
                        ("UploadId", u.id),
                        ("Initiator", owner_xml(u.owner)),
                        ("Owner", owner_xml(bucket.owner)),
                        ("StorageClass", "STANDARD"),
                        ("Initiated", u.initiated),
                    ],
                )
                for u in page.items
            ),
            *(("CommonPrefixes", [("Prefix", enc(p))]) for p in page.prefixes),
        ],
    )


def _parse_parts(body: bytes) -> list[tuple[int, str]]:
    try:
        root = xml.parse(body, "CompleteMultipartUpload")
    except xml.MalformedXMLError as exc:
        raise MalformedXML(str(exc)) from None
    parts = []
    for element in xml.children(root, "Part"):
        number_text = xml.find_text(element, "PartNumber")
        etag = xml.find_text(element, "ETag")
        try:
            number = int(number_text or "")
        except ValueError:
            raise MalformedXML("every Part needs an integer PartNumber") from None
        if etag is None:
            raise MalformedXML("every Part needs an ETag")
        parts.append((number, etag))
    if not parts:
        raise MalformedXML("The XML you provided did not list any parts")
    return parts


def complete_upload(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    refuse_unsupported_headers(req)
    body = ctx.body(req).read_all(_COMPLETE_BODY_LIMIT, MalformedXML)
    parts = _parse_parts(body)
    record = ctx.objects.complete_upload(
        bucket.name, ctx.key, ctx.query["uploadId"], parts
    )
    _xml(
        resp,
        "CompleteMultipartUploadResult",
        [
            ("Location", f"/{bucket.name}/{ctx.key}"),
            ("Bucket", bucket.name),
            ("Key", ctx.key),
            ("ETag", f'"{record.etag}"'),
        ],
    )


def abort_upload(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    ctx.objects.abort_upload(bucket.name, ctx.key, ctx.query["uploadId"])
    resp.status = falcon.HTTP_204
