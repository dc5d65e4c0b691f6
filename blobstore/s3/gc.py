"""What S3 keeps alive, told to garbage collection (see :mod:`blobstore.roots`).

S3 objects and the parts of S3 multipart uploads are GC roots read straight
from the catalog (no :class:`~blobstore.s3.objects.ObjectStore` needed, so
they are registered with every store). :class:`StaleS3Uploads` is the
expiry the GC job adds with ``[s3] multipart_expiry``.

This module imports no Store: :mod:`blobstore.roots` imports it, and the
Store imports that.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from blobstore.catalog.base import ObjectCatalog
    from blobstore.catalog.base import S3UploadCatalog
    from blobstore.s3.objects import ObjectStore

__all__ = ["S3Objects", "S3UploadParts", "StaleS3Uploads"]


class S3UploadParts:
    """Every part of every S3 multipart upload in progress."""

    def __init__(self, catalog: S3UploadCatalog) -> None:
        self._catalog = catalog

    def describe(self) -> str:
        return "s3 uploads"

    def hashes(self) -> Iterator[str]:
        for _, parts in self._catalog.iter_s3_uploads():
            for part in parts:
                yield part.hash


class S3Objects:
    """Every blob an S3 object is made of (one, or its parts')."""

    def __init__(self, catalog: ObjectCatalog) -> None:
        self._catalog = catalog

    def describe(self) -> str:
        return "s3 objects"

    def hashes(self) -> Iterator[str]:
        for obj in self._catalog.iter_objects():
            yield from obj.blob_hashes()


class StaleS3Uploads:
    """S3 multipart uploads started longer ago than the object store's
    ``multipart_expiry``."""

    kind = "s3_uploads"

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects

    def count(self, now: datetime) -> int:
        return self._objects.count_stale_uploads(now)

    def expire(self, now: datetime) -> int:
        return self._objects.remove_stale_uploads(now)
