"""Object operations: PutObject, CopyObject, GetObject, HeadObject,
DeleteObject, DeleteObjects, GetObjectTagging.

Bodies stream both ways with bounded memory: a PUT's verified body stream
goes straight into :meth:`ObjectStore.put_object`; a GET hands the blob
reader (or a window of it, for ranges and part numbers) to the WSGI server,
which can ``sendfile`` a whole local-disk blob.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

import falcon

from blobstore.errors import InvalidKey
from blobstore.errors import KeyTooLong
from blobstore.reader import Window
from blobstore.records import ObjectRecord
from blobstore.s3.rules import check_key
from blobstore_api.s3 import xml
from blobstore_api.s3.conditions import NOT_MODIFIED
from blobstore_api.s3.conditions import check_copy_source
from blobstore_api.s3.conditions import check_preconditions
from blobstore_api.s3.conditions import http_date
from blobstore_api.s3.conditions import parse_range
from blobstore_api.s3.context import Context
from blobstore_api.s3.context import parse_part_number
from blobstore_api.s3.errors import InvalidArgument
from blobstore_api.s3.errors import InvalidPartNumber
from blobstore_api.s3.errors import InvalidRequest
from blobstore_api.s3.errors import KeyTooLongError
from blobstore_api.s3.errors import MalformedXML
from blobstore_api.s3.errors import NoSuchVersion
from blobstore_api.s3.errors import Unsupported
from blobstore_api.s3.metadata import request_meta
from blobstore_api.s3.metadata import set_object_headers

__all__ = [
    "copy_object",
    "delete_object",
    "delete_objects",
    "get_object",
    "get_tagging",
    "head_object",
    "parse_copy_source",
    "parse_delete",
    "put_object",
]

MAX_DELETE_KEYS = 1000
_DELETE_BODY_LIMIT = 8 * 1024 * 1024


#: Request headers asking for what the façade does not do: storing them
#: silently would lose what the client asked for, so they are refused.
_UNSUPPORTED_HEADERS = (
    "x-amz-tagging",
    "x-amz-server-side-encryption",
    "x-amz-object-lock-",
    "if-match",
    "if-none-match",
)


def refuse_unsupported_headers(req: falcon.Request) -> None:
    """Raise NotImplemented for a write asking for tags, encryption, object
    lock or a conditional write."""
    for name in req.headers:
        if name.lower().startswith(_UNSUPPORTED_HEADERS):
            raise Unsupported(f"the {name.lower()} header is not supported")


def _check_version(ctx: Context) -> None:
    version = ctx.query.get("versionId")
    if version is not None and version != "null":
        raise NoSuchVersion(Key=ctx.key, VersionId=version)


def put_object(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    refuse_unsupported_headers(req)
    meta = request_meta(req)
    check_key(ctx.key)  # before reading a byte of the body
    body = ctx.body(req)
    body.require_length()
    record = ctx.objects.put_object(bucket.name, ctx.key, body.stream, body.size, meta)
    resp.set_header("ETag", f'"{record.etag}"')
    for name, value in body.checksums().items():
        resp.set_header(name, value)
    resp.status = falcon.HTTP_200


def parse_copy_source(value: str) -> tuple[str, str]:
    """``x-amz-copy-source`` (``[/]bucket/key[?versionId=null]``, URL-encoded)
    → (bucket, key)."""
    source, _, query = value.partition("?")
    if query:
        name, _, version = query.partition("=")
        if name != "versionId":
            raise InvalidArgument(
                "Unsupported parameter in x-amz-copy-source",
                ArgumentName="x-amz-copy-source",
                ArgumentValue=value,
            )
        if version != "null":
            raise NoSuchVersion(VersionId=version)
    try:
        decoded = unquote_to_bytes(source).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument("x-amz-copy-source is not valid UTF-8") from None
    bucket, _, key = decoded.removeprefix("/").partition("/")
    if not bucket or not key:
        raise InvalidArgument(
            "Copy Source must mention the source bucket and key: "
            "sourcebucket/sourcekey",
            ArgumentName="x-amz-copy-source",
            ArgumentValue=value,
        )
    return bucket, key


def copy_source(ctx: Context, req: falcon.Request) -> ObjectRecord:
    """The object ``x-amz-copy-source`` names, its conditions checked."""
    bucket, key = parse_copy_source(req.get_header("x-amz-copy-source") or "")
    ctx.owned_bucket(bucket)
    source = ctx.objects.get_object(bucket, key)
    check_copy_source(req.get_header, source)
    return source


def copy_object(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    refuse_unsupported_headers(req)
    check_key(ctx.key)
    source = copy_source(ctx, req)
    directive = (req.get_header("x-amz-metadata-directive") or "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise InvalidArgument(
            "Unknown metadata directive.",
            ArgumentName="x-amz-metadata-directive",
            ArgumentValue=directive,
        )
    if (source.bucket, source.key) == (bucket.name, ctx.key) and directive == "COPY":
        raise InvalidRequest(
            "This copy request is illegal because it is trying to copy an object to "
            "itself without changing the object's metadata, storage class, website "
            "redirect location or encryption attributes."
        )
    meta = request_meta(req) if directive == "REPLACE" else None
    record = ctx.objects.copy_object(source, bucket.name, ctx.key, meta)
    resp.content_type = "application/xml"
    resp.data = xml.document(
        "CopyObjectResult",
        [("LastModified", record.mtime), ("ETag", f'"{record.etag}"')],
    )


def _part_range(ctx: Context, record: ObjectRecord, text: str) -> tuple[int, int]:
    number = parse_part_number(text)
    sizes = record.index.sizes if record.index is not None else (record.size,)
    if number > len(sizes):
        raise InvalidPartNumber(PartNumberRequested=number, ActualPartCount=len(sizes))
    first = sum(sizes[: number - 1])
    return first, first + sizes[number - 1] - 1


def _serve(
    ctx: Context, req: falcon.Request, resp: falcon.Response, record: ObjectRecord
) -> tuple[int, int] | None:
    """Set the status and headers of a GET/HEAD of *record*; return the byte
    range to send (None: all of it; an empty range for a 304)."""
    if check_preconditions(req.get_header, record) == NOT_MODIFIED:
        resp.status = falcon.HTTP_304
        resp.set_header("ETag", f'"{record.etag}"')
        resp.set_header("Last-Modified", http_date(record.mtime))
        return (0, -1)
    set_object_headers(resp, record, ctx.query)
    part = ctx.query.get("partNumber")
    if part is not None:
        if req.get_header("Range"):
            raise InvalidRequest(
                "Cannot specify both Range header and partNumber query parameter"
            )
        if record.index is not None:
            resp.set_header("x-amz-mp-parts-count", str(len(record.index)))
        selected = _part_range(ctx, record, part)
    else:
        selected = parse_range(req.get_header("Range"), record.size)
    if selected is None or record.size == 0:
        resp.content_length = record.size
        return None
    first, last = selected
    resp.status = falcon.HTTP_206
    resp.set_header("Content-Range", f"bytes {first}-{last}/{record.size}")
    resp.content_length = last - first + 1
    return selected


def get_object(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    _check_version(ctx)
    record, reader = ctx.objects.open_object(bucket.name, ctx.key)
    try:
        selected = _serve(ctx, req, resp, record)
        if selected is None:
            resp.stream = reader
            return
        first, last = selected
        if last < first:  # 304: no body
            reader.close()
            return
        resp.stream = Window(reader, first, last - first + 1)
    except BaseException:
        reader.close()
        raise


def head_object(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    _check_version(ctx)
    record = ctx.objects.get_object(bucket.name, ctx.key)
    _serve(ctx, req, resp, record)


def delete_object(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    _check_version(ctx)
    ctx.objects.delete_object(bucket.name, ctx.key)
    resp.status = falcon.HTTP_204


def parse_delete(body: bytes) -> tuple[bool, list[tuple[str, str | None]]]:
    """A DeleteObjects body: whether it is quiet, and the (key, version id)
    pairs it lists (1 to :data:`MAX_DELETE_KEYS`).

    :raises MalformedXML: anything else.
    """
    try:
        root = xml.parse(body, "Delete")
    except xml.MalformedXMLError as exc:
        raise MalformedXML(str(exc)) from None
    quiet = (xml.find_text(root, "Quiet") or "").strip().lower() == "true"
    entries = xml.children(root, "Object")
    if not entries or len(entries) > MAX_DELETE_KEYS:
        raise MalformedXML(
            f"a Delete request lists 1 to {MAX_DELETE_KEYS} objects, not {len(entries)}"
        )
    requests = []
    for entry in entries:
        key = xml.find_text(entry, "Key")
        if key is None:
            raise MalformedXML("every Object in a Delete request needs a Key")
        requests.append((key, xml.find_text(entry, "VersionId")))
    return quiet, requests


def delete_objects(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    body = ctx.body(req).read_all(_DELETE_BODY_LIMIT, MalformedXML)
    quiet, requests = parse_delete(body)
    results: list[tuple[str, object]] = []
    for key, version in requests:
        version_xml = ("VersionId", version)
        error = _delete_one(ctx, bucket.name, key, version)
        if error is not None:
            code, message = error
            results.append(
                (
                    "Error",
                    [("Key", key), version_xml, ("Code", code), ("Message", message)],
                )
            )
        elif not quiet:
            results.append(("Deleted", [("Key", key), version_xml]))
    resp.content_type = "application/xml"
    resp.data = xml.document("DeleteResult", results)


def _delete_one(
    ctx: Context, bucket: str, key: str, version: str | None
) -> tuple[str, str] | None:
    if version is not None and version != "null":
        return "NoSuchVersion", "The specified version does not exist."
    try:
        check_key(key)
    except InvalidKey as exc:
        code = (
            KeyTooLongError.code
            if isinstance(exc, KeyTooLong)
            else InvalidArgument.code
        )
        return code, str(exc)
    ctx.objects.delete_object(bucket, key)
    return None


def get_tagging(ctx: Context, req: falcon.Request, resp: falcon.Response) -> None:
    bucket = ctx.owned_bucket()
    ctx.objects.get_object(bucket.name, ctx.key)
    resp.content_type = "application/xml"
    resp.data = xml.document("Tagging", [("TagSet", [])])
