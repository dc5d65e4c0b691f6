"""What garbage collection keeps: root providers, and what expires first.

The collector keeps every blob some **root provider** names, and knows
nothing else of where references live. A provider has the shape of an
external :class:`~blobstore.refsources.RefSource`: ``describe()`` (for logs
and errors) and ``hashes()`` (hex SHA-384s, malformed ones skipped). The
store's own providers read the catalog, and are always registered, whatever
façade is served: an S3 object made while the S3 façade was on stays a root
after it is turned off.

Order matters (:func:`catalog_roots` gives it): uploads are read before what
is made from them (composites, S3 objects), so an object or composite
created during a pass was either already seen or its parts were protected
by its upload.

An **expiry** removes state that stops being a root once old (expired native
uploads, stale S3 multipart uploads). Expiries run under the GC lease
before marking, so what they release is collected in the same pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Protocol

from blobstore.s3.gc import S3Objects
from blobstore.s3.gc import S3UploadParts

if TYPE_CHECKING:
    from blobstore.catalog.base import Catalog
    from blobstore.catalog.base import RefCatalog
    from blobstore.catalog.base import UploadCatalog
    from blobstore.store import Store

__all__ = [
    "CallerRefs",
    "ExpiredUploads",
    "Expiry",
    "NamedRefs",
    "NativeUploads",
    "RootProvider",
    "catalog_roots",
]


class RootProvider(Protocol):
    """Names blobs that must be kept."""

    def describe(self) -> str: ...

    def hashes(self) -> Iterator[str]: ...


class Expiry(Protocol):
    """Removes state that has outlived its time, so its blobs can go.

    ``kind`` names it in GC's summary (``<kind>_expired``).
    """

    kind: str

    def count(self, now: datetime) -> int:
        """How many would :meth:`expire` remove (a dry run)."""

    def expire(self, now: datetime) -> int:
        """Remove them; return how many."""


class NativeUploads:
    """Every native upload's whole hash and part hashes, complete or not."""

    def __init__(self, catalog: UploadCatalog) -> None:
        self._catalog = catalog

    def describe(self) -> str:
        return "uploads"

    def hashes(self) -> Iterator[str]:
        for upload in self._catalog.iter_uploads():
            if upload.hash:  # an unfinished upload has no whole hash yet
                yield upload.hash
            for part in upload.parts:
                if part is not None:
                    yield part.hash


class NamedRefs:
    """The targets of named refs (``PUT /v1/refs/NAME``)."""

    def __init__(self, catalog: RefCatalog) -> None:
        self._catalog = catalog

    def describe(self) -> str:
        return "refs"

    def hashes(self) -> Iterator[str]:
        for ref in self._catalog.iter_refs():
            yield ref.hash


class CallerRefs:
    """Hashes the caller of one pass names (``Store.gc(refs)``)."""

    def __init__(self, refs: object) -> None:
        self._refs = refs

    def describe(self) -> str:
        return "caller"

    def hashes(self) -> Iterator[str]:
        yield from self._refs  # type: ignore[misc]


def catalog_roots(catalog: Catalog) -> list[RootProvider]:
    """The store's own roots, in the order a pass must read them."""
    return [
        NativeUploads(catalog),
        S3UploadParts(catalog),
        NamedRefs(catalog),
        S3Objects(catalog),
    ]


class ExpiredUploads:
    """Native uploads past their expiry time."""

    kind = "uploads"

    def __init__(self, store: Store) -> None:
        self._store = store

    def count(self, now: datetime) -> int:
        return sum(1 for _ in self._store.catalog.iter_uploads(expired_before=now))

    def expire(self, now: datetime) -> int:
        return self._store.remove_expired_uploads(now)
