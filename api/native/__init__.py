"""The native JSON API under /v1, plus health and metrics endpoints.

:func:`add_routes` mounts every resource; ``api/openapi.yaml`` documents the
same routes (a test keeps the two in step).
"""

from __future__ import annotations

import falcon

from blobstore import Store
from blobstore.config import Settings
from blobstore_api.metrics import Metrics
from blobstore_api.metrics import MetricsResource
from blobstore_api.native.admin import Heal
from blobstore_api.native.blobs import BlobCollection
from blobstore_api.native.blobs import BlobItem
from blobstore_api.native.docs import DocsPage
from blobstore_api.native.docs import OpenApiDocument
from blobstore_api.native.health import Health
from blobstore_api.native.health import Ready
from blobstore_api.native.health import Stats
from blobstore_api.native.refs import RefCollection
from blobstore_api.native.refs import RefItem
from blobstore_api.native.uploads import UploadCollection
from blobstore_api.native.uploads import UploadFinish
from blobstore_api.native.uploads import UploadItem
from blobstore_api.native.uploads import UploadOwner
from blobstore_api.native.uploads import UploadPart

__all__ = ["add_routes"]


def add_routes(
    app: falcon.App, store: Store, settings: Settings, metrics: Metrics
) -> None:
    """Mount the native API on *app*."""
    max_body = settings.server.max_body_size
    app.add_route("/v1/blobs", BlobCollection(store, max_body))
    app.add_route("/v1/blobs/{hash}", BlobItem(store, max_body))
    app.add_route("/v1/uploads", UploadCollection(store))
    app.add_route("/v1/uploads/{id}", UploadItem(store))
    app.add_route("/v1/uploads/{id}/parts/{n}", UploadPart(store, max_body))
    app.add_route("/v1/uploads/{id}/finish", UploadFinish(store))
    app.add_route("/v1/uploads/{id}/owner", UploadOwner(store))
    app.add_route("/v1/refs", RefCollection(store))
    app.add_route("/v1/refs/{name:path}", RefItem(store))
    app.add_route("/v1/stats", Stats(store))
    app.add_route("/v1/admin/heal", Heal(store))
    app.add_route("/healthz", Health())
    app.add_route("/readyz", Ready(store))
    app.add_route("/metrics", MetricsResource(metrics))
    as_yaml, as_json, spec = OpenApiDocument.pair()
    app.add_route("/v1/openapi.yaml", as_yaml)
    app.add_route("/v1/openapi.json", as_json)
    app.add_route("/v1/docs", DocsPage(spec))
