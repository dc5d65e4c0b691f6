"""The Store: content-addressed blobs, native multipart uploads, refs, GC.

This is the Python Store API. It owns the rules; the catalog keeps the
metadata and the backend keeps the bytes::

    from blobstore import Store
    from blobstore.backends.local import LocalBackend
    from blobstore.catalog.sqlite import SQLiteCatalog

    store = Store(SQLiteCatalog("data/catalog.db"), LocalBackend("data/blobs"))
    result = store.put(open("charm.zip", "rb"))          # hash computed
    with store.open(result.hash) as blob:
        data = blob.read()

How a put stays correct under concurrency and crashes:

1. The bytes go to the backend under a fresh opaque name, through a
   :class:`~blobstore.hashing.VerifyingReader` that raises on a wrong hash or
   size before the backend commits anything.
2. The blob becomes visible only when the catalog records ``hash → name``.
   If another put of the same content won that race, this one removes its own
   copy and touches the winner's put time.
3. A put of content that already exists touches its put time *first* (so a
   running GC cannot collect it), then still reads and verifies the whole
   stream: knowing a hash is not proof of having the content.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import TypeVar

from blobstore.backends.base import Backend
from blobstore.backends.healing import HealProgress
from blobstore.backends.healing import HealReport
from blobstore.backends.healing import no_redundancy
from blobstore.catalog.base import Catalog
from blobstore.clock import to_millis
from blobstore.clock import utcnow
from blobstore.collector import GCStats
from blobstore.collector import collect
from blobstore.errors import BadParams
from blobstore.errors import BlobNotFound
from blobstore.errors import BlobStoreError
from blobstore.errors import Conflict
from blobstore.errors import PartConflict
from blobstore.errors import RefNotFound
from blobstore.errors import Unavailable
from blobstore.errors import UploadComplete
from blobstore.errors import UploadInUse
from blobstore.errors import UploadNotFound
from blobstore.hashing import EMPTY_HASH
from blobstore.hashing import Readable
from blobstore.hashing import VerifyingReader
from blobstore.hashing import check_hash
from blobstore.multipart import DEFAULT_MAX_PART_SIZE
from blobstore.multipart import DEFAULT_MAX_PARTS
from blobstore.multipart import DEFAULT_MIN_PART_SIZE
from blobstore.multipart import Limits
from blobstore.multipart import check_parts
from blobstore.multipart import infer_offset
from blobstore.multipart import new_upload_id
from blobstore.multipart import validate_part_args
from blobstore.multipart import with_part
from blobstore.readahead import ReadAhead
from blobstore.reader import BlobReader
from blobstore.reader import CompositeReader
from blobstore.records import BlobRecord
from blobstore.records import BlobTotals
from blobstore.records import MultipartIndex
from blobstore.records import PartInfo
from blobstore.records import PutResult
from blobstore.records import RefRecord
from blobstore.records import UploadRecord
from blobstore.roots import ExpiredUploads
from blobstore.roots import Expiry
from blobstore.roots import RootProvider
from blobstore.roots import catalog_roots

__all__ = ["HEAL_LAST_RUN", "PutResult", "Store"]

T = TypeVar("T")

#: Catalog state key of the last whole-store heal's summary (for /metrics).
HEAL_LAST_RUN = "heal.last_run"

log = logging.getLogger(__name__)

_MAX_REF_NAME = 1024
#: Puts at least this big read ahead in a second thread (see readahead.py).
_READAHEAD_MIN = 2 * 1024 * 1024
#: A dedup put whose verification took longer than this (seconds) touches
#: the blob again at the end: GC's grace runs from the last touch.
_RETOUCH_AFTER = 1.0


class Store:
    """A content-addressed blob store over one catalog and one backend.

    :param min_part_size: every native multipart part but the last must be at
        least this big.
    :param max_part_size: the largest part accepted.
    :param max_parts: part numbers run from 0 to ``max_parts - 1``.
    :param max_upload_expiry: the furthest in the future an upload (or an
        owner's claim on it) may expire.
    :param ref_sources: external GC roots (see :mod:`blobstore.refsources`).
    """

    def __init__(
        self,
        catalog: Catalog,
        backend: Backend,
        *,
        min_part_size: int = DEFAULT_MIN_PART_SIZE,
        max_part_size: int = DEFAULT_MAX_PART_SIZE,
        max_parts: int = DEFAULT_MAX_PARTS,
        max_upload_expiry: timedelta = timedelta(hours=24),
        ref_sources: Sequence[object] = (),
    ) -> None:
        self.catalog = catalog
        self.backend = backend
        self.limits = Limits(min_part_size, max_part_size, max_parts)
        self.max_upload_expiry = max_upload_expiry
        self.ref_sources = list(ref_sources)
        #: What GC keeps (blobstore.roots): the catalog's own roots, always.
        self.gc_roots: list[RootProvider] = catalog_roots(catalog)
        #: What GC expires before marking; the GC job adds S3's.
        self.gc_expiries: list[Expiry] = [ExpiredUploads(self)]
        # Looking up part k+1 costs a catalog read: only worth it when the
        # backend does something with the hint (the read cache does).
        self._prefetches = type(backend).prefetch is not Backend.prefetch

    def close(self) -> None:
        self.catalog.close()
        self.backend.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- blobs -------------------------------------------------------------

    def put(
        self,
        stream: Readable,
        hash: str | None = None,
        size: int | None = None,
        *,
        md5: bool = False,
        now: datetime | None = None,
    ) -> PutResult:
        """Store the content of *stream*.

        :param hash: the content's SHA-384, if the caller knows it; it is
            verified while streaming. Without it, the hash is computed.
        :param size: the content's size, if known; the stream must hold
            exactly that many bytes.
        :param md5: also compute the content's MD5 (``PutResult.md5``).
        :param now: the put time to record (tests use it; defaults to now).
        :raises BadParams: an implausible hash or negative size.
        :raises HashMismatch: the content does not have *hash*.
        :raises SizeMismatch: the stream is shorter or longer than *size*.
        """
        if hash is not None:
            check_hash(hash)
        if size is not None and size < 0:
            raise BadParams(f"negative size {size}")
        given = to_millis(now) if now is not None else None
        started = time.monotonic()
        if hash is not None and self.catalog.touch_blob(hash, given or utcnow()):
            # Dedup: the put time is bumped before reading so that GC
            # cannot collect the blob while we verify the content.
            reader = VerifyingReader(stream, size, hash, md5=md5)
            reader.drain()
            if given is None and time.monotonic() - started > _RETOUCH_AFTER:
                self._retouch(hash)
            return PutResult(hash, reader.size, False, reader.md5)
        # Big (or unknown-size) content: read and hash in a second thread
        # while the backend writes, so the costs overlap instead of adding.
        # With SHA-384 alone, the socket reads get a thread of their own too
        # (three stages): a 1 GiB native PUT went from 625 to 709 MB/s
        # (median of 6, quiet machine), 0.75 -> 0.85 of one core's SHA-384.
        # With MD5 as well (S3), the hashing already takes two threads and a
        # third stage made it slower (472 -> 445 MB/s), so it reads in the
        # hashing thread.
        big = size is None or size >= _READAHEAD_MIN
        received = ReadAhead(stream) if big and not md5 else None
        source = received if received is not None else stream
        reader = VerifyingReader(source, size, hash, md5=md5)
        feed = ReadAhead(reader) if big else reader
        name = uuid.uuid4().hex
        try:
            self.backend.put(name, feed, size)
            if reader.hash is None:  # the backend stopped before the end
                feed.read()
        except BaseException:
            self._discard(name)
            raise
        finally:
            if feed is not reader:
                feed.close()
            if received is not None:
                received.close()
        # The put time is when the blob becomes visible, not when the put
        # began: a put that streamed for longer than GC's grace is as young
        # as any other, and the reference that follows it finds it there.
        put_time = given if given is not None else utcnow()
        created = self._record(BlobRecord(reader.result(), reader.size, put_time, name))
        return PutResult(reader.hash, reader.size, created, reader.md5)

    def _retouch(self, hash: str) -> None:
        """After a long dedup verification: young again, or gone meanwhile."""
        if not self.catalog.touch_blob(hash, utcnow()):
            raise Unavailable(
                f"blob {hash} was collected while its content was being "
                "verified; put it again"
            )

    def _record(self, record: BlobRecord) -> bool:
        """Make a freshly written blob visible; True if it is new.

        If the content is already recorded (a concurrent put won, or a put of
        unknown hash met existing content), keep the existing blob, touch it,
        and remove our copy.
        """
        try:
            while True:
                if self.catalog.insert_blob(record):
                    return True
                if self.catalog.touch_blob(record.hash, record.put_time):
                    break
                # The winner vanished (collected) between the two calls: retry.
        except BaseException:
            self._discard(record.name)
            raise
        self._discard(record.name)
        return False

    def _discard(self, name: str | None) -> None:
        if name is None:
            return
        try:
            self.backend.remove(name)
        except BlobStoreError as exc:  # the orphan sweep will get it later
            log.warning("cannot remove unrecorded backend object %s: %s", name, exc)

    def stat(self, hash: str) -> BlobRecord:
        """The catalog record of a blob. :raises BlobNotFound:"""
        check_hash(hash)
        record = self.catalog.get_blob(hash)
        if record is None:
            raise BlobNotFound(f"blob {hash} not found")
        return record

    def exists(self, hash: str) -> bool:
        check_hash(hash)
        return self.catalog.get_blob(hash) is not None

    def open(
        self, hash: str, index: MultipartIndex | None = None
    ) -> BlobReader | CompositeReader:
        """A seekable reader of the blob (plain or composite).

        With *index*, read the listed parts in order (the reference's way to
        read a multipart blob whose index the caller kept).

        :raises BlobNotFound: no such blob, or its bytes are gone.
        """
        if index is not None:
            return self._open_index(index, hash)
        record = self.stat(hash)
        if record.index is not None:
            return self._open_index(record.index, hash)
        try:
            stream, size = self.backend.open_blob(record.object_name(), hash)
        except BlobNotFound:
            raise BlobNotFound(f"blob {hash} not found") from None
        return BlobReader(stream, size, hash)

    def open_index(self, index: MultipartIndex) -> BlobReader | CompositeReader:
        """A seekable reader of the concatenation of the blobs in *index*
        (an S3 multipart object, or a composite whose index the caller kept).

        :raises BlobNotFound: a part is missing (when it is reached).
        """
        return self._open_index(index, None)

    def _open_index(self, index: MultipartIndex, hash: str | None):
        if len(index) == 1:
            return self.open(index.hashes[0])
        prefetch = self._prefetch if self._prefetches else None
        return CompositeReader(index, hash, self.open, prefetch)

    def _prefetch(self, hash: str) -> None:
        """Tell the backend a part will be read soon (see CompositeReader)."""
        try:
            record = self.catalog.get_blob(hash)
            if record is not None and record.name is not None:
                self.backend.prefetch(record.name, hash)
        except BlobStoreError as exc:  # a hint: the real open will report it
            log.debug("prefetch of %s skipped: %s", hash, exc)

    def stats(self) -> BlobTotals:
        """How many blobs the store holds and how many bytes they take."""
        return self.catalog.blob_totals()

    def backend_stats(self) -> dict[str, Any]:
        """The backend's own figures (capacity, drive health), for operators."""
        return self.backend.stats()

    def metric_collectors(self, *, include_counters: bool = True) -> list[Any]:
        """The backend's own Prometheus collectors (the read cache's)."""
        return self.backend.metric_collectors(include_counters=include_counters)

    def purge_trash(self) -> int:
        """Empty the backend's trash now (erasure moves removed objects there
        and purges them in the background, which a short-lived process would
        not wait for); return how many entries went."""
        return self.backend.purge_trash()

    def check(self) -> None:
        """Raise :class:`~blobstore.errors.Unavailable` unless both the catalog
        and the backend can be reached (a readiness probe)."""
        self.catalog.check()
        self.backend.check()

    # -- native multipart uploads -------------------------------------------

    def _expiry(self, expires: datetime | timedelta, now: datetime) -> datetime:
        if isinstance(expires, timedelta):
            if expires > self.max_upload_expiry:
                # Refused before now + expires, which can be past year 9999.
                raise BadParams(
                    f"expiry {expires} from now is too far in the future "
                    f"(maximum {self.max_upload_expiry})"
                )
            expires = now + expires
        expires = to_millis(expires)
        if expires > now + self.max_upload_expiry:
            raise BadParams(
                f"expiry {expires.isoformat()} is too far in the future "
                f"(maximum {self.max_upload_expiry})"
            )
        return expires

    def new_upload(self, expires: datetime | timedelta | None = None) -> str:
        """Start a multipart upload that expires at *expires* (a time, or a
        duration from now; default: the maximum). Returns its id."""
        now = utcnow()
        when = self._expiry(
            expires if expires is not None else self.max_upload_expiry, now
        )
        upload_id = new_upload_id()
        self.catalog.insert_upload(UploadRecord(upload_id, when, ()))
        return upload_id

    def _get_upload(self, upload_id: str) -> UploadRecord:
        record = self.catalog.get_upload(upload_id)
        if record is None:
            raise UploadNotFound(f"upload id {upload_id!r} not found")
        return record

    def put_part(
        self,
        upload_id: str,
        part: int,
        stream: Readable,
        size: int,
        hash: str,
        offset: int | None = None,
    ) -> bool:
        """Upload part *part* of an upload, verifying its hash and size.

        :param offset: where the part starts in the whole blob; without it the
            part must follow the previous one, which must already be known.
        :returns: False if the part was already complete (the stream was not
            read), True if it was stored now.
        """
        validate_part_args(self.limits, part, size)
        check_hash(hash)
        if offset is not None and offset < 0:
            raise BadParams(f"negative offset {offset}")
        upload = self._get_upload(upload_id)
        if offset is None:
            offset = infer_offset(upload.parts, part)
        info = PartInfo(hash, size, offset, False)
        check_parts(self.limits, with_part(upload.parts, part, info))
        existing = upload.parts[part] if part < len(upload.parts) else None
        if existing is not None:
            if existing.hash != hash:
                raise PartConflict("hash mismatch for already uploaded part")
            if existing.complete:
                return False
            # An earlier attempt failed: upload it again under the same record.
        elif upload.hash is not None:
            raise UploadComplete(
                "cannot upload new part because upload is already complete"
            )
        elif not self.catalog.init_part(upload_id, part, info):
            # Written *before* the data, so GC (which keeps every upload's
            # part hashes) protects the part while it uploads.
            self._explain_init_failure(upload_id)
        try:
            self.put(stream, hash, size)
        except BlobStoreError as exc:
            raise type(exc)(f"cannot upload part {part} ({hash}): {exc}") from exc
        done = PartInfo(hash, size, offset, True)
        if not self.catalog.complete_part(upload_id, part, done):
            raise UploadNotFound("upload expired or removed")
        return True

    def _explain_init_failure(self, upload_id: str) -> None:
        upload = self.catalog.get_upload(upload_id)
        if upload is None:
            raise UploadNotFound(f"upload id {upload_id!r} not found")
        if upload.hash is not None:
            raise UploadComplete(
                "cannot upload new part because upload is already complete"
            )
        raise PartConflict(
            "cannot update initial part record - concurrent upload of the same part?"
        )

    def finish_upload(
        self, upload_id: str, hashes: Sequence[str]
    ) -> tuple[MultipartIndex, str]:
        """Finish an upload whose parts are *hashes* (parts 0..n-1, in order).

        The whole blob becomes a first-class composite blob: ``open(hash)``
        reads it. Finishing again returns the same result.

        :returns: the part index and the SHA-384 of the whole content.
        """
        upload = self._get_upload(upload_id)
        if len(hashes) != len(upload.parts):
            raise BadParams(
                f"part count mismatch (got {len(hashes)} "
                f"but {len(upload.parts)} uploaded)"
            )
        for i, (want, stored) in enumerate(zip(hashes, upload.parts, strict=True)):
            if stored is None or not stored.complete:
                raise BadParams(f"part {i} not uploaded yet")
            if want != stored.hash:
                raise BadParams(
                    f'hash mismatch on part {i} (got "{want}" want "{stored.hash}")'
                )
        check_parts(self.limits, upload.parts)
        index = MultipartIndex.from_pairs([(p.hash, p.size) for p in upload.parts if p])
        if upload.hash is not None:
            return index, upload.hash
        try:
            whole = self._whole_hash(index)
        except BlobNotFound:
            raise UploadNotFound("upload expired or removed") from None
        if len(index) != 1:
            # Recorded before the upload is marked finished, so a finished
            # upload always has its composite blob (see ARCHITECTURE.md).
            self._record_composite(whole, index)
        if not self.catalog.set_upload_hash(upload_id, whole):
            raise UploadNotFound("upload expired or removed")
        return index, whole

    def _whole_hash(self, index: MultipartIndex) -> str:
        # SHA-384 cannot be combined from the parts' digests: re-read them.
        if len(index) == 0:
            return EMPTY_HASH
        if len(index) == 1:
            return index.hashes[0]
        with self._open_index(index, None) as reader:
            verifier = VerifyingReader(reader, index.size)
            verifier.drain()
        return verifier.result()

    def _record_composite(self, hash: str, index: MultipartIndex) -> None:
        now = utcnow()
        while not self.catalog.insert_blob(
            BlobRecord(hash, index.size, now, None, index)
        ):
            if self.catalog.touch_blob(hash, now):
                return

    def upload_info(self, upload_id: str) -> UploadRecord:
        """The upload's parts (None for gaps), expiry, owner and hash (once
        finished). :raises UploadNotFound:"""
        return self._get_upload(upload_id)

    def set_owner(
        self, upload_id: str, owner: str, expires: datetime | timedelta
    ) -> None:
        """Claim a finished upload for *owner* until *expires*, so nothing
        else can claim or remove it while the owner records its index.
        Claiming again as the same owner pushes the expiry out."""
        if not owner:
            raise BadParams("empty owner")
        try:
            owner.encode()
        except UnicodeEncodeError:  # a lone surrogate: no catalog can keep it
            raise BadParams(f"owner {owner!r} is not valid UTF-8") from None
        when = self._expiry(expires, utcnow())
        if self.catalog.set_upload_owner(upload_id, owner, when):
            return
        upload = self.catalog.get_upload(upload_id)
        if upload is None:
            raise UploadNotFound("upload has been removed")
        if upload.hash is None:
            raise Conflict("cannot set owner on incomplete upload")
        if upload.owner is not None and upload.owner != owner:
            raise UploadInUse("upload already used by something else")
        raise Conflict("cannot set owner for some unknown reason")

    def remove_upload(self, upload_id: str) -> None:
        """Remove an upload (its part blobs are left to GC). Removing an
        unknown upload succeeds. :raises UploadInUse: an owner claimed it
        concurrently."""
        upload = self.catalog.get_upload(upload_id)
        if upload is None:
            return
        if self.catalog.delete_upload(upload_id, only_unowned=upload.owner is None):
            return
        if self.catalog.get_upload(upload_id) is not None:
            raise UploadInUse(f"upload {upload_id!r} was claimed while being removed")

    def list_uploads(
        self, expired_before: datetime | None = None
    ) -> list[UploadRecord]:
        """Every native upload (only those expiring before *expired_before*
        when given), for operators."""
        return list(self.catalog.iter_uploads(expired_before=expired_before))

    def remove_expired_uploads(self, now: datetime | None = None) -> int:
        """Remove every upload that expired before *now*; return how many."""
        now = now or utcnow()
        removed = 0
        for upload in list(self.catalog.iter_uploads(expired_before=now)):
            try:
                self.remove_upload(upload.id)
                removed += 1
            except UploadInUse:
                pass  # claimed (and its expiry pushed out) concurrently
        return removed

    # -- named refs ----------------------------------------------------------

    def put_ref(self, name: str, hash: str) -> bool:
        """Pin blob *hash* under *name* (a GC root). True if the ref is new.

        :raises BlobNotFound: the blob is not stored.
        """
        _check_ref_name(name)
        check_hash(hash)
        return self.hold(
            [hash],
            lambda: self.catalog.put_ref(name, hash, utcnow()),
            lambda: self.catalog.delete_ref(name),
        )

    def hold(
        self,
        hashes: Sequence[str],
        reference: Callable[[], T],
        undo: Callable[[], object],
        *,
        just_put: bool = False,
    ) -> T:
        """Make a new reference to stored blobs (*reference* records it) so
        that no GC pass can delete them from under it; return what
        *reference* returns.

        The blobs are touched before the reference is recorded and again
        after. A pass whose mark ran before the reference was recorded has
        a ``before`` older than the second touch, so its conditional delete
        no longer matches -- unless it deleted first, and then the second
        touch fails: the reference is undone (*undo*) and the caller hears
        :class:`BlobNotFound`, never a success for a reference to nothing.
        This holds with no GC grace at all (on one clock: across nodes the
        grace must exceed their clock skew).

        :param just_put: the caller stored these blobs a moment ago, and the
            put touched them (a new record, or a dedup'd put's touch), so the
            first touch is skipped: it would only repeat the put's, one more
            catalog commit on every S3 PUT. The touch after is what makes the
            reference safe, and it is never skipped.

        :raises BlobNotFound: a blob is not stored, or was collected meanwhile.
        """
        if not just_put:
            self._touch_all(hashes)
        result = reference()
        try:
            self._touch_all(hashes)
        except BlobNotFound:
            undo()
            raise
        return result

    def _touch_all(self, hashes: Sequence[str]) -> None:
        now = utcnow()
        for h in hashes:
            if not self.catalog.touch_blob(h, now):
                raise BlobNotFound(f"blob {h} not found")

    def get_ref(self, name: str) -> RefRecord:
        _check_ref_name(name)
        ref = self.catalog.get_ref(name)
        if ref is None:
            raise RefNotFound(f"ref {name!r} not found")
        return ref

    def delete_ref(self, name: str) -> None:
        _check_ref_name(name)
        if not self.catalog.delete_ref(name):
            raise RefNotFound(f"ref {name!r} not found")

    def list_refs(
        self, prefix: str = "", after: str = "", limit: int = 1000
    ) -> list[RefRecord]:
        if not 1 <= limit <= 10000:
            raise BadParams(f"limit {limit} out of range 1..10000")
        return self.catalog.list_refs(prefix, after, limit)

    # -- healing ---------------------------------------------------------------

    def check_healable(self) -> None:
        """:raises BadParams: the backend keeps no redundancy to heal from."""
        if not self.backend.can_heal:
            raise no_redundancy(self.backend)

    def heal(
        self, hash: str | None = None, progress: HealProgress | None = None
    ) -> HealReport:
        """Rebuild lost or damaged redundancy (erasure shards) of one blob or
        of everything the backend holds.

        With *hash*, the blob's backend objects are healed: its own, or a
        composite's parts (recursively); a part whose record is missing is
        reported in ``errors``. Without it, every backend object is scanned
        and the summary is kept in the catalog (:data:`HEAL_LAST_RUN`).

        :param progress: called after each object with the report so far
            (``report.scanned`` of ``report.total``) and the object's name.
        :raises BadParams: the backend cannot heal (no redundancy).
        :raises BlobNotFound: no blob *hash*.
        """
        self.check_healable()
        if hash is None:
            report = self.backend.heal(progress=progress)
            self._record_heal(report)
            return report
        objects, problems = self.object_names(hash)
        report = HealReport(total=len(objects), errors=problems)
        for part_hash, name in objects:
            try:
                report.merge(self.backend.heal(name))
            except BlobNotFound:
                report.scanned += 1
                report.errors.append(f"blob {part_hash}: its bytes ({name}) are gone")
            if progress is not None:
                progress(report, name)
        return report

    def _record_heal(self, report: HealReport) -> None:
        doc = {
            "finished": utcnow().isoformat(),
            "scanned": report.scanned,
            "healthy": report.healthy,
            "healed": report.healed,
            "shards_rebuilt": report.shards_rebuilt,
            "degraded": len(report.degraded),
            "unrecoverable": len(report.unrecoverable),
            "errors": len(report.errors),
        }
        try:
            self.catalog.put_state(HEAL_LAST_RUN, doc)
        except BlobStoreError as exc:  # the heal itself is done; say so
            log.warning("cannot record the heal summary: %s", exc)

    def object_names(self, hash: str) -> tuple[list[tuple[str, str]], list[str]]:
        """The backend objects holding blob *hash*'s bytes: ``(hash, name)``
        of the blob itself, or of every plain part of a composite (parts of
        parts included, each once), and the problems met (parts with no
        record). :raises BlobNotFound: no blob *hash*."""
        top = self.stat(hash)
        objects: list[tuple[str, str]] = []
        problems: list[str] = []
        seen = {hash}
        pending = [top]
        while pending:
            record = pending.pop()
            if record.name is not None:
                objects.append((record.hash, record.name))
                continue
            for part in record.parts().hashes:
                if part in seen:
                    continue
                seen.add(part)
                found = self.catalog.get_blob(part)
                if found is None:
                    problems.append(f"part {part} of {record.hash} has no record")
                else:
                    pending.append(found)
        return objects, problems

    def names_to_hashes(self, names: Iterable[str]) -> dict[str, str]:
        """The blob hash of each of *names* (backend object names) that a
        record points at. Scans the catalog once: for reports, not hot paths."""
        wanted = set(names)
        found: dict[str, str] = {}
        if not wanted:
            return found
        for record in self.catalog.iter_blobs():
            if record.name in wanted:
                found[record.name] = record.hash
                if len(found) == len(wanted):
                    break
        return found

    # -- garbage collection ---------------------------------------------------

    def add_gc_root(self, provider: RootProvider) -> None:
        """Keep every blob *provider* names (after the catalog's own roots)."""
        self.gc_roots.append(provider)

    def add_gc_expiry(self, expiry: Expiry) -> None:
        """Run *expiry* under the GC lease before each pass marks."""
        self.gc_expiries.append(expiry)

    def gc(
        self, refs: Iterable[str] = (), before: datetime | None = None, **kwargs: Any
    ) -> GCStats:
        """Collect every blob not referenced and put at or before *before*.

        See :func:`blobstore.collector.collect` for the options and the
        returned :class:`~blobstore.collector.GCStats`.
        """
        return collect(self, refs, before if before is not None else utcnow(), **kwargs)


def _check_ref_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise BadParams("empty ref name")
    try:
        encoded = name.encode()
    except UnicodeEncodeError:  # a lone surrogate ("\ud800"): not text
        raise BadParams(f"ref name {name!r} is not valid UTF-8") from None
    if len(encoded) > _MAX_REF_NAME:
        raise BadParams(f"ref name longer than {_MAX_REF_NAME} bytes")
    if any(ord(c) < 0x20 or c == "\x7f" for c in name):
        raise BadParams(f"ref name {name!r} has control characters")
    # Names are paths ("releases/1.0"): segments that a URL or a file system
    # would collapse or resolve name nothing a client could address again.
    for segment in name.split("/"):
        if segment in ("", ".", ".."):
            what = "an empty segment" if not segment else f"a {segment!r} segment"
            raise BadParams(
                f"ref name {name!r} has {what}: names are '/'-separated "
                "segments, none empty, '.' or '..'"
            )
