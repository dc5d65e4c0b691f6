"""The Catalog contract: the one place metadata lives.

The catalog records which blobs exist (``hash → backend name`` or a part
index), native multipart uploads, named refs, S3 buckets and objects, and the
GC lease. A blob is *visible* exactly when its :class:`BlobRecord` exists;
bytes in a backend without a record are invisible and swept as orphans.

The contract is six concerns, one abstract class each -- blobs
(:class:`BlobCatalog`), native uploads (:class:`UploadCatalog`), named refs
(:class:`RefCatalog`), S3 buckets and objects (:class:`ObjectCatalog`), S3
multipart uploads (:class:`S3UploadCatalog`), leases and job state
(:class:`JobCatalog`) -- and :class:`Catalog` is all six in one database
(SQLite and MongoDB each implement it as one class, one section per concern,
in this order).

Every method that changes state is atomic on its own, and the conditional
ones are the concurrency control of the whole store (no lock is held across
calls). They return ``False`` when their condition did not hold, so the Store
can tell a lost race from success. ``tests/catalog_contract.py`` checks every
implementation against the same rules.

Implementations register under the ``blobstore.catalogs`` entry-point group
(see :mod:`blobstore.registry`).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import ClassVar

from blobstore.records import BlobRecord
from blobstore.records import BlobTotals
from blobstore.records import BucketRecord
from blobstore.records import ObjectRecord
from blobstore.records import PartInfo
from blobstore.records import RefRecord
from blobstore.records import S3PartRecord
from blobstore.records import S3UploadRecord
from blobstore.records import UploadRecord

__all__ = [
    "BlobCatalog",
    "Catalog",
    "JobCatalog",
    "ObjectCatalog",
    "RefCatalog",
    "S3UploadCatalog",
    "UploadCatalog",
]


class BlobCatalog(abc.ABC):
    """Which blobs exist: ``hash → backend object`` or a part index. A blob is
    visible exactly when its record exists."""

    @abc.abstractmethod
    def get_blob(self, hash: str) -> BlobRecord | None:
        """The record for *hash*, or None."""

    @abc.abstractmethod
    def insert_blob(self, record: BlobRecord) -> bool:
        """Record a new blob; False (and no change) if *hash* already exists."""

    @abc.abstractmethod
    def touch_blob(self, hash: str, now: datetime) -> bool:
        """Set the blob's put time to *now*; False if it does not exist.

        Anything that makes a new reference to an existing blob touches it
        first, so a GC pass that started earlier cannot collect it.
        """

    @abc.abstractmethod
    def delete_blob_if(self, hash: str, name: str | None, put_before: datetime) -> bool:
        """Delete the record only if its name is *name* and put time <= *put_before*."""

    @abc.abstractmethod
    def iter_blobs(self, put_before: datetime | None = None) -> Iterator[BlobRecord]:
        """Every blob (put at or before *put_before* when given), in batches,
        in ascending order of hash: GC's sweep merge-joins them with its
        sorted mark set (:meth:`blobstore.markset.MarkSet.join`)."""

    @abc.abstractmethod
    def iter_composites(self) -> Iterator[BlobRecord]:
        """Every composite blob, in ascending order of hash (as iter_blobs)."""

    @abc.abstractmethod
    def known_names(self, names: Sequence[str]) -> set[str]:
        """Those of *names* that some blob record points at."""

    @abc.abstractmethod
    def blob_totals(self) -> BlobTotals:
        """Counts and stored bytes."""


class UploadCatalog(abc.ABC):
    """Native multipart uploads: their parts, owner and expiry."""

    @abc.abstractmethod
    def insert_upload(self, record: UploadRecord) -> None:
        """Record a new (empty) upload."""

    @abc.abstractmethod
    def get_upload(self, upload_id: str) -> UploadRecord | None:
        """The upload, with ``parts`` indexed by part number (None for gaps)."""

    @abc.abstractmethod
    def init_part(self, upload_id: str, part: int, info: PartInfo) -> bool:
        """Record an incomplete part, only if the upload exists, is not finished,
        and slot *part* is empty."""

    @abc.abstractmethod
    def complete_part(self, upload_id: str, part: int, info: PartInfo) -> bool:
        """Replace slot *part* with *info*; False if the upload is gone."""

    @abc.abstractmethod
    def set_upload_hash(self, upload_id: str, hash: str) -> bool:
        """Mark the upload finished; False if it is gone."""

    @abc.abstractmethod
    def set_upload_owner(self, upload_id: str, owner: str, expires: datetime) -> bool:
        """Claim a finished upload for *owner* (unowned, or already *owner*'s)."""

    @abc.abstractmethod
    def delete_upload(self, upload_id: str, *, only_unowned: bool) -> bool:
        """Delete the upload (only while it has no owner, if asked)."""

    @abc.abstractmethod
    def iter_uploads(
        self, expired_before: datetime | None = None
    ) -> Iterator[UploadRecord]:
        """Every upload (expiring before *expired_before* when given)."""


class RefCatalog(abc.ABC):
    """Named refs: ``name → hash``, GC roots people name."""

    @abc.abstractmethod
    def put_ref(self, name: str, hash: str, now: datetime) -> bool:
        """Create or replace a named ref; True if it was created."""

    @abc.abstractmethod
    def get_ref(self, name: str) -> RefRecord | None: ...

    @abc.abstractmethod
    def delete_ref(self, name: str) -> bool: ...

    @abc.abstractmethod
    def list_refs(
        self, prefix: str = "", after: str = "", limit: int = 1000
    ) -> list[RefRecord]:
        """Refs whose name starts with *prefix*, after *after*, in name order."""

    @abc.abstractmethod
    def iter_refs(self) -> Iterator[RefRecord]: ...


class ObjectCatalog(abc.ABC):
    """S3 buckets and the objects in them."""

    @abc.abstractmethod
    def create_bucket(self, record: BucketRecord) -> bool:
        """False if a bucket of that name exists."""

    @abc.abstractmethod
    def get_bucket(self, name: str) -> BucketRecord | None: ...

    @abc.abstractmethod
    def delete_bucket(self, name: str) -> bool:
        """Delete an empty bucket (and its pending S3 uploads); False if missing.

        Raises :class:`~blobstore.errors.Conflict` if it holds objects.
        """

    @abc.abstractmethod
    def list_buckets(self, owner: str | None = None) -> list[BucketRecord]: ...

    @abc.abstractmethod
    def put_object(self, record: ObjectRecord) -> None:
        """Create or replace ``bucket/key``."""

    @abc.abstractmethod
    def get_object(self, bucket: str, key: str) -> ObjectRecord | None: ...

    @abc.abstractmethod
    def delete_object(self, bucket: str, key: str) -> bool: ...

    @abc.abstractmethod
    def delete_object_if(self, record: ObjectRecord) -> bool:
        """Delete ``record.bucket/record.key`` only while it is exactly
        *record*: a put undoing its own object must not delete a newer one
        put at the same key meanwhile."""

    @abc.abstractmethod
    def list_objects(
        self, bucket: str, prefix: str = "", start_after: str = "", limit: int = 1000
    ) -> list[ObjectRecord]:
        """Objects with keys starting with *prefix*, strictly after *start_after*,
        in UTF-8 byte order, at most *limit*."""

    @abc.abstractmethod
    def iter_objects(self) -> Iterator[ObjectRecord]: ...


class S3UploadCatalog(abc.ABC):
    """S3 multipart uploads and their parts."""

    @abc.abstractmethod
    def create_s3_upload(self, record: S3UploadRecord) -> None: ...

    @abc.abstractmethod
    def get_s3_upload(self, upload_id: str) -> S3UploadRecord | None: ...

    @abc.abstractmethod
    def put_s3_part(self, part: S3PartRecord) -> bool:
        """Create or replace a part; False if the upload is gone."""

    @abc.abstractmethod
    def list_s3_parts(
        self, upload_id: str, after: int = 0, limit: int = 10000
    ) -> list[S3PartRecord]: ...

    @abc.abstractmethod
    def list_s3_uploads(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str = "",
        upload_id_marker: str = "",
        limit: int = 1000,
    ) -> list[S3UploadRecord]:
        """Pending uploads ordered by (key, initiated, id)."""

    @abc.abstractmethod
    def complete_s3_upload(self, upload_id: str, record: ObjectRecord) -> bool:
        """Store *record* and delete the upload; False if the upload is gone."""

    @abc.abstractmethod
    def delete_s3_upload(self, upload_id: str) -> bool: ...

    @abc.abstractmethod
    def iter_s3_uploads(
        self, initiated_before: datetime | None = None
    ) -> Iterator[tuple[S3UploadRecord, list[S3PartRecord]]]: ...


class JobCatalog(abc.ABC):
    """Leases (one GC at a time across nodes) and operator job summaries."""

    @abc.abstractmethod
    def acquire_lease(
        self, name: str, holder: str, ttl: timedelta, now: datetime
    ) -> bool:
        """Take lease *name* if it is free, expired, or already *holder*'s
        (which renews it)."""

    @abc.abstractmethod
    def release_lease(self, name: str, holder: str) -> None: ...

    @abc.abstractmethod
    def put_state(self, key: str, value: Mapping[str, Any]) -> None:
        """Keep a small JSON-able document (e.g. the last GC run's summary)."""

    @abc.abstractmethod
    def get_state(self, key: str) -> dict[str, Any] | None: ...


class Catalog(
    BlobCatalog,
    UploadCatalog,
    RefCatalog,
    ObjectCatalog,
    S3UploadCatalog,
    JobCatalog,
):
    """The whole metadata store: every concern above, in one database.

    Code that needs one concern takes that protocol (the GC lease takes a
    :class:`JobCatalog`, the GC roots an :class:`UploadCatalog`...), so what
    it may touch is in its signature; each concern has its own contract
    suite in ``tests/catalog_contract.py``.
    """

    #: The config ``type`` this catalog answers to.
    type_name: ClassVar[str] = ""

    #: How many records the ``iter_*`` methods fetch per query. Iterators
    #: page by key instead of holding one cursor open, so a slow consumer
    #: (the GC removing backend objects) never holds a read snapshot or a
    #: server cursor for long. Tests lower it to exercise paging.
    batch_size: int = 5000

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Catalog:
        kwargs = {k: v for k, v in config.items() if k != "type"}
        return cls(**kwargs)

    def check(self) -> None:
        """Raise :class:`~blobstore.errors.Unavailable` if unreachable."""

    def close(self) -> None:
        """Release connections."""
