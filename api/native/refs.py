"""``/v1/refs``: named refs, the GC roots an artifact store without its own
database uses to pin blobs. A name may contain ``/`` (``releases/1.0``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from blobstore import Store
from blobstore.errors import BadParams
from blobstore_api.native.common import int_param
from blobstore_api.native.common import iso
from blobstore_api.native.common import json_body

if TYPE_CHECKING:  # records are data the Store returns; no catalog calls
    from blobstore.records import RefRecord

__all__ = ["RefCollection", "RefItem"]

DEFAULT_LIMIT = 1000


def _ref_json(ref: RefRecord) -> dict[str, str]:
    return {"name": ref.name, "hash": ref.hash, "mtime": iso(ref.mtime)}


class RefCollection:
    """``GET /v1/refs?prefix=&after=&limit=``: refs in name order."""

    access = {"GET": "read"}

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit = int_param(req, "limit", minimum=1) or DEFAULT_LIMIT
        refs = self._store.list_refs(
            req.get_param("prefix", default=""),
            req.get_param("after", default=""),
            limit,
        )
        resp.media = {
            "refs": [_ref_json(r) for r in refs],
            # Pass as ?after= to get the next page; null on the last one.
            "next": refs[-1].name if len(refs) == limit else None,
        }


class RefItem:
    """``PUT``/``GET``/``DELETE /v1/refs/{name}``."""

    access = {"GET": "read", "PUT": "read-write", "DELETE": "read-write"}

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        hash = json_body(req).get("hash")
        if not isinstance(hash, str):
            raise BadParams('the body needs "hash": the SHA-384 of a stored blob')
        created = self._store.put_ref(name, hash)
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = _ref_json(self._store.get_ref(name))

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = _ref_json(self._store.get_ref(name))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self._store.delete_ref(name)
        resp.status = falcon.HTTP_204
