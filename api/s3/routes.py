"""Which handler serves a request: by method, target (service, bucket,
object) and S3 sub-resource (``?uploads``, ``?acl``, ...).

Query parameters that are not sub-resources are ignored (SDKs add some, such
as ``x-id``); sub-resources the façade does not implement answer 501
``NotImplemented`` rather than being mistaken for the plain operation.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping

import falcon

from blobstore_api.s3 import buckets
from blobstore_api.s3 import listing
from blobstore_api.s3 import multipart
from blobstore_api.s3 import objects
from blobstore_api.s3.context import Context
from blobstore_api.s3.context import Target
from blobstore_api.s3.errors import MethodNotAllowed
from blobstore_api.s3.errors import Unsupported

__all__ = ["Handler", "select"]

Handler = Callable[[Context, falcon.Request, falcon.Response], None]

#: Sub-resources S3 has and this façade does not implement.
UNSUPPORTED = frozenset(
    {
        "accelerate",
        "analytics",
        "attributes",
        "cors",
        "encryption",
        "intelligent-tiering",
        "inventory",
        "legal-hold",
        "lifecycle",
        "logging",
        "metrics",
        "notification",
        "object-lock",
        "ownershipControls",
        "policy",
        "policyStatus",
        "publicAccessBlock",
        "replication",
        "requestPayment",
        "restore",
        "retention",
        "select",
        "tagging",
        "torrent",
        "website",
    }
)


def _unsupported(
    query: Mapping[str, str], allowed: frozenset[str] = frozenset()
) -> None:
    found = sorted((UNSUPPORTED - allowed) & query.keys())
    if found:
        raise Unsupported(f"the ?{found[0]} sub-resource is not implemented")


def _service(method: str, query: Mapping[str, str]) -> Handler:
    if method == "GET":
        return buckets.list_buckets
    raise MethodNotAllowed(Method=method, ResourceType="SERVICE")


def _bucket(method: str, query: Mapping[str, str]) -> Handler:
    if method == "GET":
        for name, handler in (
            ("location", buckets.get_location),
            ("uploads", multipart.list_uploads),
            ("versions", listing.list_versions),
            ("acl", buckets.get_acl),
            ("versioning", buckets.get_versioning),
        ):
            if name in query:
                return handler
        _unsupported(query)
        if query.get("list-type") == "2":
            return listing.list_objects_v2
        return listing.list_objects_v1
    if method == "HEAD":
        return buckets.head_bucket
    if method == "PUT":
        if "acl" in query:
            return buckets.put_acl
        if "versioning" in query:
            raise Unsupported("bucket versioning is not implemented")
        _unsupported(query)
        return buckets.create_bucket
    if method == "DELETE":
        _unsupported(query)
        return buckets.delete_bucket
    if method == "POST" and "delete" in query:
        return objects.delete_objects
    raise MethodNotAllowed(Method=method, ResourceType="BUCKET")


def _object(method: str, query: Mapping[str, str]) -> Handler:
    if method == "GET":
        if "uploadId" in query:
            return multipart.list_parts
        if "acl" in query:
            return buckets.get_acl
        if "tagging" in query:
            return objects.get_tagging
        _unsupported(query)
        return objects.get_object
    if method == "HEAD":
        return objects.head_object
    if method == "PUT":
        if "uploadId" in query:
            return multipart.upload_part
        if "acl" in query:
            return buckets.put_acl
        _unsupported(query)
        return objects.put_object
    if method == "DELETE":
        if "uploadId" in query:
            return multipart.abort_upload
        _unsupported(query)
        return objects.delete_object
    if method == "POST":
        if "uploads" in query:
            return multipart.create_upload
        if "uploadId" in query:
            return multipart.complete_upload
        _unsupported(query)
    raise MethodNotAllowed(Method=method, ResourceType="OBJECT")


def select(
    method: str, target: Target, query: Mapping[str, str], copy: bool
) -> Handler:
    """The handler for *method* on *target*; *copy*: ``x-amz-copy-source`` is set."""
    if target.bucket is None:
        return _service(method, query)
    if target.key is None:
        return _bucket(method, query)
    handler = _object(method, query)
    if handler is objects.put_object and copy:
        return objects.copy_object
    return handler
