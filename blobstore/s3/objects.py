"""S3 buckets, objects and multipart uploads, as a library over the Store.

The S3 façade (``blobstore_api.s3``) calls only this class and the Store; it
never touches the catalog or a backend. The rules:

* **Bytes are blobs.** An object's content goes through :meth:`Store.put`
  (SHA-384 and MD5 in one pass, deduplicated by SHA-384); the object record
  ``bucket/key → hash, size, MD5 ETag, headers, metadata`` is written after
  the bytes are safely stored, so a failed upload leaves no object.
* **Multipart parts are blobs too**, recorded against their upload. Completing
  an upload records the *part index* (part hashes and sizes) as the object's
  content: no byte is re-read or copied. Its ETag is S3's
  ``md5(part md5s)-N``. Completing the same upload again returns the same
  object, as S3 does.
* **Touch before referencing.** Copying an object, copying a part from an
  object, and completing an upload create new references to blobs that
  already exist; each blob is touched first so a GC pass that started earlier
  cannot collect it (see ARCHITECTURE.md).
* **Stale uploads** (started longer ago than ``multipart_expiry``) are removed
  by :meth:`ObjectStore.remove_stale_uploads`, which the GC job calls; their
  parts are then garbage like any unreferenced blob.

Example::

    objects = ObjectStore(store)
    objects.create_bucket("photos", owner="alice")
    objects.put_object("photos", "2024/cat.jpg", open("cat.jpg", "rb"), size=n)
    record, reader = objects.open_object("photos", "2024/cat.jpg")
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING

from blobstore.clock import utcnow
from blobstore.errors import BadParams
from blobstore.errors import BlobNotFound
from blobstore.errors import BucketExists
from blobstore.errors import BucketNotEmpty
from blobstore.errors import BucketNotFound
from blobstore.errors import Conflict
from blobstore.errors import Corrupt
from blobstore.errors import EntityTooLarge
from blobstore.errors import InvalidPart
from blobstore.errors import InvalidPartOrder
from blobstore.errors import ObjectNotFound
from blobstore.errors import PartTooSmall
from blobstore.errors import Unavailable
from blobstore.errors import UploadNotFound
from blobstore.hashing import Readable
from blobstore.reader import Window
from blobstore.records import BucketRecord
from blobstore.records import MultipartIndex
from blobstore.records import ObjectRecord
from blobstore.records import S3PartRecord
from blobstore.records import S3UploadRecord
from blobstore.s3.listing import Page
from blobstore.s3.listing import paginate
from blobstore.s3.rules import MAX_OBJECT_SIZE
from blobstore.s3.rules import MAX_PART_SIZE
from blobstore.s3.rules import MAX_PARTS
from blobstore.s3.rules import MAX_PUT_SIZE
from blobstore.s3.rules import MIN_PART_SIZE
from blobstore.s3.rules import check_bucket_name
from blobstore.s3.rules import check_key
from blobstore.s3.rules import multipart_etag
from blobstore.s3.rules import new_s3_upload_id

if TYPE_CHECKING:
    from blobstore.reader import BlobReader
    from blobstore.reader import CompositeReader
from blobstore.store import Store

__all__ = ["DEFAULT_MULTIPART_EXPIRY", "ObjectMeta", "ObjectStore"]

DEFAULT_MULTIPART_EXPIRY = timedelta(days=7)

_ETAG_RE = re.compile(r"[0-9a-f]{32}")
# An upload id marker below every id new_s3_upload_id makes: a cursor
# "(key, this)" means "at key, inclusive".
_BEFORE_ANY_ID = " "


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """What is stored with an object besides its bytes: its content type, the
    standard headers kept with it (Cache-Control, Content-Disposition, ...;
    lowercase names) and its user metadata (``x-amz-meta-*`` without the
    prefix, lowercase names)."""

    content_type: str = "application/octet-stream"
    headers: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)


def normalize_etag(etag: str) -> str:
    """A client-sent ETag without quotes or surrounding space, lowercase."""
    return etag.strip().strip('"').strip().lower()


class _Capped(io.RawIOBase):
    """Passes *stream* through, raising once more than *limit* bytes came
    (for bodies of unknown length: chunked transfer encoding)."""

    def __init__(self, stream: Readable, limit: int) -> None:
        super().__init__()
        self._stream = stream
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self._stream.read(len(view))
        n = len(data)
        if n > self._left:
            raise EntityTooLarge("the body is larger than the maximum allowed size")
        self._left -= n
        view[:n] = data
        return n


class ObjectStore:
    """S3 buckets, objects and multipart uploads over one :class:`Store`.

    :param multipart_expiry: how long a multipart upload may stay incomplete
        before :meth:`remove_stale_uploads` removes it.
    :param min_part_size: every part of a completed upload but the last must
        be at least this big (S3: 5 MiB).
    """

    def __init__(
        self,
        store: Store,
        *,
        multipart_expiry: timedelta = DEFAULT_MULTIPART_EXPIRY,
        min_part_size: int = MIN_PART_SIZE,
    ) -> None:
        if multipart_expiry <= timedelta(0):
            raise BadParams(
                f"multipart expiry must be positive, not {multipart_expiry}"
            )
        self.store = store
        self._catalog = store.catalog
        self.multipart_expiry = multipart_expiry
        self.min_part_size = min_part_size

    # -- buckets -------------------------------------------------------------

    def create_bucket(self, name: str, owner: str, region: str = "us-east-1") -> bool:
        """Create bucket *name* for *owner*; False if *owner* already has it.

        :raises InvalidBucketName:
        :raises BucketExists: another owner has a bucket of that name.
        """
        check_bucket_name(name)
        while True:
            if self._catalog.create_bucket(BucketRecord(name, owner, utcnow(), region)):
                return True
            existing = self._catalog.get_bucket(name)
            if existing is None:
                continue  # deleted between the two calls: try again
            if existing.owner != owner:
                raise BucketExists(f"bucket {name!r} is owned by someone else")
            return False

    def get_bucket(self, name: str) -> BucketRecord:
        """:raises BucketNotFound:"""
        record = self._catalog.get_bucket(name)
        if record is None:
            raise BucketNotFound(f"bucket {name!r} not found")
        return record

    def delete_bucket(self, name: str) -> None:
        """Delete an empty bucket, with its incomplete multipart uploads.

        :raises BucketNotFound:
        :raises BucketNotEmpty:
        """
        try:
            deleted = self._catalog.delete_bucket(name)
        except Conflict as exc:
            raise BucketNotEmpty(f"bucket {name!r} is not empty") from exc
        if not deleted:
            raise BucketNotFound(f"bucket {name!r} not found")

    def list_buckets(self, owner: str | None = None) -> list[BucketRecord]:
        """Buckets (of *owner*, when given), by name."""
        return self._catalog.list_buckets(owner)

    # -- objects -------------------------------------------------------------

    def put_object(
        self,
        bucket: str,
        key: str,
        stream: Readable,
        size: int | None = None,
        meta: ObjectMeta | None = None,
    ) -> ObjectRecord:
        """Store *stream* as ``bucket/key`` (replacing any object there).

        :param size: the content's size; None reads to the end of *stream*.
        :raises BucketNotFound:
        :raises InvalidKey:
        :raises EntityTooLarge: more than 5 GiB.
        """
        check_key(key)
        self.get_bucket(bucket)
        meta = meta or ObjectMeta()
        result = self._put_bytes(stream, size, MAX_PUT_SIZE)
        record = ObjectRecord(
            bucket,
            key,
            result.size,
            result.md5 or "",
            utcnow(),
            hash=result.hash,
            content_type=meta.content_type,
            headers=dict(meta.headers),
            metadata=dict(meta.metadata),
        )
        self._record_object(record, just_put=True)
        return record

    def _record_object(self, record: ObjectRecord, *, just_put: bool = False) -> None:
        """Record *record*, whose blobs are stored, safe from a concurrent
        GC pass (:meth:`Store.hold`); the bucket is checked again after.

        :raises Unavailable: a GC pass collected the content meanwhile (it
            was put, or copied, just as a pass with no grace swept): the
            client sends it again (S3 clients retry a 503).
        """

        try:
            self.store.hold(
                record.blob_hashes(),
                lambda: self._catalog.put_object(record),
                # only this version: a newer put at the key stays
                lambda: self._catalog.delete_object_if(record),
                just_put=just_put,
            )
        except BlobNotFound:
            raise Unavailable(
                f"the content of {record.bucket}/{record.key} was collected while "
                "it was being stored; send it again"
            ) from None
        self._recheck_bucket(record)

    def _put_bytes(self, stream: Readable, size: int | None, limit: int):
        if size is not None and size > limit:
            raise EntityTooLarge(f"{size} bytes is more than the maximum {limit}")
        if size is None:
            stream = _Capped(stream, limit)
        return self.store.put(stream, size=size, md5=True)

    def _recheck_bucket(self, record: ObjectRecord) -> None:
        # The catalog does not tie objects to their bucket's existence: if the
        # bucket was deleted while the bytes were streaming, undo the put
        # rather than leave an object no listing or GC pass can see.
        if self._catalog.get_bucket(record.bucket) is None:
            self._catalog.delete_object_if(record)  # not a newer put's
            raise BucketNotFound(f"bucket {record.bucket!r} was deleted")

    def get_object(self, bucket: str, key: str) -> ObjectRecord:
        """:raises BucketNotFound: :raises ObjectNotFound:"""
        record = self._catalog.get_object(bucket, key)
        if record is None:
            self.get_bucket(bucket)
            raise ObjectNotFound(f"no object {key!r} in bucket {bucket!r}")
        return record

    def open_object(
        self, bucket: str, key: str
    ) -> tuple[ObjectRecord, BlobReader | CompositeReader]:
        """The object's record and a seekable reader of its content.

        :raises BucketNotFound: :raises ObjectNotFound:
        :raises Corrupt: the object's content is missing from the store.
        """
        record = self.get_object(bucket, key)
        for _ in range(3):
            try:
                return record, self.open_record(record)
            except BlobNotFound:
                # Overwritten meanwhile, and the old content collected: read
                # the object as it is now.
                again = self.get_object(bucket, key)
                if again == record:
                    raise Corrupt(
                        f"the content of object {key!r} in bucket {bucket!r} "
                        "is missing from the store"
                    ) from None
                record = again
        raise Conflict(f"object {key!r} in bucket {bucket!r} keeps changing")

    def open_record(self, record: ObjectRecord) -> BlobReader | CompositeReader:
        """A reader of *record*'s content. :raises BlobNotFound:"""
        if record.index is not None:
            return self.store.open_index(record.index)
        if record.hash is None:
            raise Corrupt(f"object {record.key!r} has neither a hash nor an index")
        return self.store.open(record.hash)

    def delete_object(self, bucket: str, key: str) -> bool:
        """Delete ``bucket/key``; False if there was no such object.

        :raises BucketNotFound:
        """
        if self._catalog.delete_object(bucket, key):
            return True
        self.get_bucket(bucket)
        return False

    def copy_object(
        self, source: ObjectRecord, bucket: str, key: str, meta: ObjectMeta | None
    ) -> ObjectRecord:
        """Make ``bucket/key`` a copy of *source*, sharing its blobs (no byte is
        copied). *meta* None keeps the source's metadata.

        :raises ObjectNotFound: the source's content is gone (deleted meanwhile).
        """
        check_key(key)
        self.get_bucket(bucket)
        self._touch(source.blob_hashes(), source)  # gone: ObjectNotFound
        if meta is None:
            meta = ObjectMeta(source.content_type, source.headers, source.metadata)
        record = ObjectRecord(
            bucket,
            key,
            source.size,
            source.etag,
            utcnow(),
            hash=source.hash,
            index=source.index,
            content_type=meta.content_type,
            headers=dict(meta.headers),
            metadata=dict(meta.metadata),
        )
        self._record_object(record)
        return record

    def _touch(self, hashes: Sequence[str], source: ObjectRecord) -> None:
        now = utcnow()
        for h in hashes:
            if not self._catalog.touch_blob(h, now):
                raise ObjectNotFound(
                    f"the content of {source.bucket}/{source.key} is gone "
                    "(deleted while being copied)"
                )

    def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        marker: str = "",
        limit: int = 1000,
    ) -> Page[ObjectRecord]:
        """One page of ``bucket``'s objects after *marker*, in UTF-8 byte order,
        with keys rolled up into common prefixes at *delimiter*.

        :raises BucketNotFound:
        """
        self.get_bucket(bucket)
        catalog = self._catalog

        def fetch(cursor: tuple[str, bool], n: int) -> list[ObjectRecord]:
            after, inclusive = cursor
            found: list[ObjectRecord] = []
            if inclusive:
                exact = catalog.get_object(bucket, after)
                if exact is not None:
                    found.append(exact)
            return found + catalog.list_objects(bucket, prefix, after, n - len(found))

        return paginate(
            fetch=fetch,
            key_of=lambda r: r.key,
            after_item=lambda r: (r.key, False),
            at_key=lambda k: (k, True),
            start=(marker, False),
            marker=marker,
            prefix=prefix,
            delimiter=delimiter,
            limit=limit,
        )

    # -- multipart uploads ----------------------------------------------------

    def create_upload(
        self, bucket: str, key: str, owner: str, meta: ObjectMeta | None = None
    ) -> S3UploadRecord:
        """Start a multipart upload of ``bucket/key``.

        :raises BucketNotFound: :raises InvalidKey:
        """
        check_key(key)
        self.get_bucket(bucket)
        meta = meta or ObjectMeta()
        now = utcnow()
        record = S3UploadRecord(
            new_s3_upload_id(now),
            bucket,
            key,
            now,
            owner,
            meta.content_type,
            dict(meta.headers),
            dict(meta.metadata),
        )
        self._catalog.create_s3_upload(record)
        return record

    def get_upload(self, bucket: str, key: str, upload_id: str) -> S3UploadRecord:
        """The upload *upload_id* of ``bucket/key``.

        :raises BucketNotFound: :raises UploadNotFound:
        """
        record = self._catalog.get_s3_upload(upload_id)
        if record is None or record.bucket != bucket or record.key != key:
            self.get_bucket(bucket)
            raise UploadNotFound(f"no upload {upload_id!r} of {bucket}/{key}")
        return record

    @staticmethod
    def _check_part_number(number: int) -> None:
        if not 1 <= number <= MAX_PARTS:
            raise BadParams(
                f"part number must be between 1 and {MAX_PARTS}, not {number}"
            )

    def put_part(
        self,
        upload: S3UploadRecord,
        number: int,
        stream: Readable,
        size: int | None = None,
    ) -> S3PartRecord:
        """Store part *number* (1..10000) of *upload*, replacing any earlier one.

        :raises UploadNotFound: the upload was completed or aborted meanwhile.
        """
        self._check_part_number(number)
        result = self._put_bytes(stream, size, MAX_PART_SIZE)
        return self._record_part(upload, number, result.hash, result.size, result.md5)

    def _record_part(
        self, upload: S3UploadRecord, number: int, hash: str, size: int, md5: str | None
    ) -> S3PartRecord:
        part = S3PartRecord(upload.id, number, hash, size, md5 or "", utcnow())
        if not self._catalog.put_s3_part(part):
            raise UploadNotFound(f"upload {upload.id!r} was completed or aborted")
        return part

    def copy_part(
        self,
        upload: S3UploadRecord,
        number: int,
        source: ObjectRecord,
        first: int | None = None,
        last: int | None = None,
    ) -> S3PartRecord:
        """Make part *number* of *upload* bytes ``first..last`` (inclusive; the
        whole object when None) of *source*.

        Copying a whole single-blob object shares its blob; a range, or a
        multipart source, is read and stored as a new part blob (its MD5 is
        needed for the ETag).
        """
        self._check_part_number(number)
        if first is None or last is None:
            first, last = 0, source.size - 1
        if not 0 <= first <= last < source.size and not (
            source.size == 0 and (first, last) == (0, -1)
        ):
            raise BadParams(
                f"range {first}-{last} is not valid for an object of "
                f"{source.size} bytes"
            )
        length = last - first + 1
        if length > MAX_PART_SIZE:
            raise EntityTooLarge(f"a part of {length} bytes is too large")
        if (
            first == 0
            and length == source.size
            and source.hash is not None
            and _ETAG_RE.fullmatch(source.etag)
        ):
            self._touch([source.hash], source)
            return self._record_part(upload, number, source.hash, length, source.etag)
        try:
            reader = self.open_record(source)
        except BlobNotFound:
            raise ObjectNotFound(
                f"the content of {source.bucket}/{source.key} is gone"
            ) from None
        with Window(reader, first, length) as window:
            result = self.store.put(window, size=length, md5=True)
        return self._record_part(upload, number, result.hash, result.size, result.md5)

    def list_parts(
        self, upload: S3UploadRecord, after: int = 0, limit: int = 1000
    ) -> tuple[list[S3PartRecord], bool]:
        """Parts of *upload* numbered above *after*, and whether more follow."""
        parts = self._catalog.list_s3_parts(upload.id, after, limit + 1)
        return parts[:limit], len(parts) > limit

    def list_uploads(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        upload_id_marker: str = "",
        limit: int = 1000,
    ) -> Page[S3UploadRecord]:
        """One page of ``bucket``'s incomplete uploads, by key then start time.

        :raises BucketNotFound:
        """
        self.get_bucket(bucket)
        catalog = self._catalog

        def fetch(cursor: tuple[str, str], n: int) -> list[S3UploadRecord]:
            key, upload_id = cursor
            return catalog.list_s3_uploads(bucket, prefix, key, upload_id, n)

        # S3 ignores an upload-id-marker without a key-marker.
        start = (key_marker, upload_id_marker if key_marker else "")
        return paginate(
            fetch=fetch,
            key_of=lambda u: u.key,
            after_item=lambda u: (u.key, u.id),
            at_key=lambda k: (k, _BEFORE_ANY_ID),
            start=start,
            marker=key_marker,
            prefix=prefix,
            delimiter=delimiter,
            limit=limit,
        )

    def complete_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> ObjectRecord:
        """Make ``bucket/key`` the listed parts of the upload, in order.

        :param parts: ``(part number, ETag)`` pairs, ascending; a subset of the
            uploaded parts is allowed.
        :raises UploadNotFound: :raises InvalidPartOrder: :raises InvalidPart:
        :raises PartTooSmall: a part other than the last is below the minimum.
        """
        upload = self._catalog.get_s3_upload(upload_id)
        if upload is None or upload.bucket != bucket or upload.key != key:
            return self._completed_before(bucket, key, upload_id, parts)
        if not parts:
            raise BadParams("a completion must list at least one part")
        numbers = [n for n, _ in parts]
        for a, b in itertools.pairwise(numbers):
            if b <= a:
                raise InvalidPartOrder(
                    "the list of parts was not in ascending order "
                    f"(part {b} follows part {a})"
                )
        stored = {p.number: p for p in self._catalog.list_s3_parts(upload_id)}
        chosen: list[S3PartRecord] = []
        for number, etag in parts:
            part = stored.get(number)
            if part is None or normalize_etag(etag) != part.md5:
                raise InvalidPart(
                    f"part {number} was not uploaded, or its ETag is not {etag!r}"
                )
            chosen.append(part)
        for part in chosen[:-1]:
            if part.size < self.min_part_size:
                raise PartTooSmall(
                    f"part {part.number} is {part.size} bytes; every part but the "
                    f"last must be at least {self.min_part_size} bytes"
                )
        index = MultipartIndex.from_pairs([(p.hash, p.size) for p in chosen])
        if index.size > MAX_OBJECT_SIZE:
            raise EntityTooLarge(f"an object of {index.size} bytes is too large")
        now = utcnow()
        for part in chosen:
            if not self._catalog.touch_blob(part.hash, now):
                raise Corrupt(
                    f"the data of part {part.number} is missing from the store"
                )
        record = ObjectRecord(
            bucket,
            key,
            index.size,
            multipart_etag([p.md5 for p in chosen]),
            now,
            index=index,
            content_type=upload.content_type,
            headers=dict(upload.headers),
            metadata=dict(upload.metadata),
            upload_id=upload_id,
        )
        if not self._catalog.complete_s3_upload(upload_id, record):
            return self._completed_before(bucket, key, upload_id, parts)
        self._recheck_bucket(record)
        return record

    def _completed_before(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> ObjectRecord:
        """Completing an upload again succeeds if the object it made is still
        there and the same parts are listed."""
        current = self._catalog.get_object(bucket, key)
        etags = [normalize_etag(e) for _, e in parts]
        if (
            current is not None
            and current.upload_id == upload_id
            and etags
            and all(_ETAG_RE.fullmatch(e) for e in etags)
            and current.etag == multipart_etag(etags)
        ):
            return current
        self.get_bucket(bucket)
        raise UploadNotFound(f"no upload {upload_id!r} of {bucket}/{key}")

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """Abandon an upload; its parts become garbage.

        :raises BucketNotFound: :raises UploadNotFound:
        """
        self.get_upload(bucket, key, upload_id)
        if not self._catalog.delete_s3_upload(upload_id):
            raise UploadNotFound(f"no upload {upload_id!r} of {bucket}/{key}")

    def all_uploads(
        self, *, stale_at: datetime | None = None
    ) -> list[tuple[S3UploadRecord, list[S3PartRecord]]]:
        """Every multipart upload in every bucket with its parts (only the
        stale ones at *stale_at* when given), for operators."""
        cutoff = None if stale_at is None else stale_at - self.multipart_expiry
        return list(self._catalog.iter_s3_uploads(initiated_before=cutoff))

    def count_stale_uploads(self, now: datetime | None = None) -> int:
        """How many uploads :meth:`remove_stale_uploads` would remove."""
        return len(self._stale_uploads(now))

    def remove_stale_uploads(self, now: datetime | None = None) -> int:
        """Remove every upload started more than ``multipart_expiry`` before
        *now*; return how many. The GC job does this before collecting
        (:class:`blobstore.s3.gc.StaleS3Uploads`)."""
        stale = self._stale_uploads(now)
        return sum(
            1 for upload_id in stale if self._catalog.delete_s3_upload(upload_id)
        )

    def _stale_uploads(self, now: datetime | None) -> list[str]:
        cutoff = (now or utcnow()) - self.multipart_expiry
        return [u.id for u, _ in self._catalog.iter_s3_uploads(initiated_before=cutoff)]
