"""``/v1/uploads``: native multipart uploads of huge blobs.

A client creates an upload, puts parts (each verified against its hash, in
any order and in parallel when it gives offsets), finishes it with the list
of part hashes, and gets the hash of the whole blob, which is then readable
at ``/v1/blobs/{hash}`` like any other. An owner (the artifact that records
the blob) can claim the finished upload so nothing else removes it first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

import falcon

from blobstore import Store
from blobstore.errors import BadParams
from blobstore_api.native.common import duration_value
from blobstore_api.native.common import int_param
from blobstore_api.native.common import iso
from blobstore_api.native.common import json_body
from blobstore_api.streaming import request_body

if TYPE_CHECKING:  # records are data the Store returns; no catalog calls
    from blobstore.records import UploadRecord

__all__ = [
    "UploadCollection",
    "UploadFinish",
    "UploadItem",
    "UploadOwner",
    "UploadPart",
    "upload_json",
]


def upload_json(upload: UploadRecord) -> dict[str, Any]:
    """The JSON form of an upload: parts by number (null for gaps)."""
    return {
        "id": upload.id,
        "expires": iso(upload.expires),
        "hash": upload.hash,
        "owner": upload.owner,
        "parts": [
            None
            if p is None
            else {
                "hash": p.hash,
                "size": p.size,
                "offset": p.offset,
                "complete": p.complete,
            }
            for p in upload.parts
        ],
    }


class UploadCollection:
    """``POST /v1/uploads?expires=<seconds>``: start an upload."""

    access = {"POST": "read-write"}

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        raw = req.get_param("expires")
        expires = None if raw is None else duration_value("expires", raw)
        upload_id = self._store.new_upload(expires)
        upload = self._store.upload_info(upload_id)
        limits = self._store.limits
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/uploads/{upload_id}"
        resp.media = {
            "id": upload_id,
            "expires": iso(upload.expires),
            "min_part_size": limits.min_part_size,
            "max_part_size": limits.max_part_size,
            "max_parts": limits.max_parts,
        }


class UploadItem:
    """``GET``/``DELETE /v1/uploads/{id}``."""

    access = {"GET": "read", "DELETE": "read-write"}

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        resp.media = upload_json(self._store.upload_info(id))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        self._store.remove_upload(id)
        resp.status = falcon.HTTP_204


class UploadPart:
    """``PUT /v1/uploads/{id}/parts/{n}?hash=<sha384>[&offset=<bytes>]``."""

    access = {"PUT": "read-write"}

    def __init__(self, store: Store, max_body_size: int) -> None:
        self._store = store
        self._max_body = max_body_size

    def on_put(
        self, req: falcon.Request, resp: falcon.Response, id: str, n: str
    ) -> None:
        try:
            part = int(n)
        except ValueError:
            raise BadParams(f"part number must be an integer, not {n!r}") from None
        hash = req.get_param("hash")
        if not hash:
            raise BadParams("missing hash parameter")
        offset = int_param(req, "offset")
        body = req.context.body = request_body(req, self._max_body, require_length=True)
        size = req.content_length
        if size is None:  # request_body has refused it already; never reached
            raise BadParams("a part needs a Content-Length")
        stored = self._store.put_part(id, part, body, size, hash, offset)
        resp.media = {"part": part, "hash": hash, "size": size, "stored": stored}


def _part_hashes(doc: dict[str, Any]) -> list[str]:
    parts = doc.get("parts")
    if not isinstance(parts, list):
        raise BadParams('the body needs "parts": a list of {"hash": ...}')
    hashes = []
    for i, part in enumerate(parts):
        if not isinstance(part, dict) or not isinstance(part.get("hash"), str):
            raise BadParams(f'parts[{i}] must be an object with a string "hash"')
        hashes.append(part["hash"])
    return hashes


class UploadFinish:
    """``POST /v1/uploads/{id}/finish`` with ``{"parts": [{"hash": ...}]}``."""

    access = {"POST": "read-write"}

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_post(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        hashes = _part_hashes(json_body(req))
        index, whole = self._store.finish_upload(id, hashes)
        resp.media = {"hash": whole, "size": index.size, "index": index.to_dict()}


class UploadOwner:
    """``PUT /v1/uploads/{id}/owner`` with ``{"owner": ..., "expires": seconds}``."""

    access = {"PUT": "read-write"}

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_put(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
        doc = json_body(req)
        owner = doc.get("owner")
        if not isinstance(owner, str) or not owner:
            raise BadParams('the body needs "owner": a non-empty string')
        if "expires" not in doc:
            raise BadParams('the body needs "expires": seconds from now')
        expires = duration_value("expires", doc["expires"])
        self._store.set_owner(id, owner, expires)
        resp.media = upload_json(self._store.upload_info(id))
