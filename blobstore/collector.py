"""Garbage collection: reclaim blobs that nothing references.

One pass (:func:`collect`), under a lease in the catalog so only one runs
across all nodes:

1. Read the external ref sources. They come first so that a source that
   fails stops the pass before it has changed anything.
2. Run the store's expiries (:mod:`blobstore.roots`): expired native
   uploads, and stale S3 multipart uploads when the GC job registered them.
3. **Mark.** Gather every other root from the store's root providers, in
   their order (uploads before what is made from them: see
   :func:`blobstore.roots.catalog_roots`), then the caller's refs, then the
   parts of every composite blob that is kept. The collector knows nothing
   of where the roots live (native, S3 or elsewhere).
   The marks go to a :class:`~blobstore.markset.MarkSet`, spilled in
   sorted runs to a temporary file, so the pass's memory stays flat.
4. **Sweep.** The catalog lists blobs in hash order and the sweep merges
   that listing with the sorted marks (a merge join, no lookups). For every
   blob put at or before ``before`` and not marked,
   delete its catalog record *on condition* that its name and put time are
   unchanged (a concurrent put of the same content bumps the put time, and
   the delete then matches nothing), and only then remove its backend
   object. A failed backend remove leaves an unreachable object, never a
   record pointing at missing bytes.
5. **Orphans.** Backend objects no record points at (a put that crashed
   between writing and recording, a failed remove) are removed once older
   than ``before`` minus ``orphan_margin``: a put writes its bytes *before*
   recording them, so a young unrecorded object may be a put in progress.

Anything that creates a new reference to an *existing* blob must touch the
blob first (``Catalog.touch_blob``), so that a pass which missed the new
reference cannot delete it; with little or no grace a whole pass can run
between that touch and the record, so references go through
:meth:`Store.hold <blobstore.Store.hold>`, which touches again after and
undoes a reference to a blob that is gone. Only one pass runs at a time: it holds the
``gc`` :class:`~blobstore.lease.Lease`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import TYPE_CHECKING

from blobstore.clock import to_millis
from blobstore.clock import utcnow
from blobstore.errors import BlobStoreError
from blobstore.errors import RefSourceError
from blobstore.lease import Lease
from blobstore.markset import MarkSet
from blobstore.roots import CallerRefs

if TYPE_CHECKING:
    from blobstore.records import BlobRecord
    from blobstore.refsources import RefSource
    from blobstore.roots import Expiry
    from blobstore.roots import RootProvider
    from blobstore.store import Store

__all__ = ["GCStats", "collect", "last_runs"]

log = logging.getLogger(__name__)

_HEX_SHA384 = re.compile(r"[0-9a-f]{96}")

#: ``progress(phase, done)`` is called as a pass advances; phases are
#: "uploads", "mark", "sweep", "orphans".
Progress = Callable[[str, int], None]


@dataclass
class GCStats:
    """What one pass did. ``count``/``max_size``/``mean_size`` describe the
    kept blobs put before the cut-off (the reference's BlobStats);
    ``expired`` counts what each expiry removed, by its kind (``to_dict``
    spells them ``uploads_expired``, ``s3_uploads_expired``...)."""

    started: str = ""
    before: str = ""
    duration: float = 0.0
    expired: dict[str, int] = field(default_factory=dict)
    roots: int = 0
    scanned: int = 0
    count: int = 0
    max_size: int = 0
    mean_size: int = 0
    deleted: int = 0
    reclaimed_bytes: int = 0
    orphans_swept: int = 0
    orphan_bytes: int = 0
    errors: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict[str, object]:
        doc = asdict(self)
        for kind, n in doc.pop("expired").items():
            doc[f"{kind}_expired"] = n
        return doc


def collect(
    store: Store,
    refs: Iterable[str],
    before: datetime,
    *,
    ref_sources: Iterable[RefSource] | None = None,
    sweep_orphans: bool = True,
    orphan_margin: timedelta = timedelta(hours=1),
    dry_run: bool = False,
    lease_ttl: timedelta = timedelta(minutes=2),
    progress: Progress | None = None,
    expiries: Iterable[Expiry] | None = None,
) -> GCStats:
    """Run one GC pass; see the module docstring.

    :param refs: extra roots from the caller (hex hashes).
    :param before: only blobs put at or before this time may be deleted.
    :param ref_sources: external roots; defaults to the store's configured ones.
    :param dry_run: count what would be deleted, delete nothing (uploads that
        would expire are counted too).
    :param expiries: what to expire before marking; defaults to the store's
        (``Store.gc_expiries``: expired native uploads, plus what was added
        with ``Store.add_gc_expiry``).
    :raises LeaseHeld: another pass is running.
    :raises RefSourceError: an external ref source failed (nothing deleted).
    """
    started = time.monotonic()
    before = to_millis(before)
    stats = GCStats(
        started=utcnow().isoformat(), before=before.isoformat(), dry_run=dry_run
    )
    tick = progress or (lambda phase, n: None)
    sources = list(store.ref_sources if ref_sources is None else ref_sources)
    expiring = list(store.gc_expiries if expiries is None else expiries)
    with Lease(store.catalog, lease_ttl) as lease:
        try:
            # External sources first: one that fails then stops the pass
            # before it has changed anything at all.
            with _RefSet() as live:
                _mark_external(sources, live)
                _expire(expiring, stats)
                tick("uploads", sum(stats.expired.values()))
                roots = [*store.gc_roots, CallerRefs(refs)]
                _mark(store, roots, live, before, tick)
                stats.roots = len(live)  # an upper bound until the sweep
                lease.check()
                _sweep(store, live, before, stats, lease, tick)
            if sweep_orphans:
                _sweep_orphans(store, before - orphan_margin, stats, lease, tick)
        except BaseException as exc:
            stats.duration = round(time.monotonic() - started, 3)
            _record(store, stats, failure=f"{type(exc).__name__}: {exc}")
            raise
    stats.duration = round(time.monotonic() - started, 3)
    _record(store, stats)
    log.info("gc pass done", extra={"gc": stats.to_dict()})
    return stats


def _expire(expiries: list[Expiry], stats: GCStats) -> None:
    now = utcnow()
    for expiry in expiries:
        done = expiry.count(now) if stats.dry_run else expiry.expire(now)
        stats.expired[expiry.kind] = stats.expired.get(expiry.kind, 0) + done


#: Catalog state keys where the last pass is kept (for /metrics and operators).
LAST_RUN = "gc.last_run"
LAST_FAILURE = "gc.last_failure"


def _record(store: Store, stats: GCStats, failure: str | None = None) -> None:
    """Keep the pass's summary in the catalog, so every node can export it."""
    if stats.dry_run:
        return
    doc = {**stats.to_dict(), "finished": utcnow().isoformat()}
    try:
        if failure is None:
            store.catalog.put_state(LAST_RUN, doc)
        else:
            store.catalog.put_state(LAST_FAILURE, {**doc, "error": failure})
    except BlobStoreError as exc:  # never hide the pass's own outcome
        log.warning("cannot record the gc summary: %s", exc)


def last_runs(store: Store) -> dict[str, dict | None]:
    """The last successful and the last failed pass, as recorded."""
    return {
        "last_run": store.catalog.get_state(LAST_RUN),
        "last_failure": store.catalog.get_state(LAST_FAILURE),
    }


class _RefSet:
    """The live hashes (a :class:`~blobstore.markset.MarkSet`: 8 bytes each,
    spilled to a temporary file), skipping and logging malformed values
    from the roots."""

    def __init__(self) -> None:
        self._set = MarkSet()

    def add(self, value: object, source: str) -> None:
        if not value:
            return  # an unfinished upload has no whole hash yet
        # Sources may write hex in either case, padded: the same blob.
        digest = value.strip().lower() if isinstance(value, str) else ""
        if not _HEX_SHA384.fullmatch(digest):
            log.warning("ignoring malformed hash %r from %s", value, source)
            return
        self._set.add(digest)

    def join(self, records: Iterable[BlobRecord]) -> Iterator[tuple[BlobRecord, bool]]:
        """Each record (in ascending hash order) with whether it is marked."""
        return self._set.join(records, _hash_of)

    @property
    def distinct(self) -> int | None:
        return self._set.distinct

    def __enter__(self) -> _RefSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self._set.close()

    def __len__(self) -> int:
        return len(self._set)


def _hash_of(record: BlobRecord) -> str:
    return record.hash


def _mark_external(sources: list[RefSource], live: _RefSet) -> None:
    for source in sources:
        label = source.describe()
        for h in _source_hashes(source, label):
            live.add(h, label)


def _source_hashes(source: RefSource, label: str) -> Iterator[object]:
    """The source's hashes; its failure, and only its, as RefSourceError
    (the mark set's own, such as a full spill disk, stay what they are)."""
    try:
        yield from source.hashes()
    except Exception as exc:
        raise RefSourceError(
            f"ref source {label} failed: {type(exc).__name__}: {exc}; "
            "nothing was deleted"
        ) from exc


def _mark(
    store: Store,
    providers: list[RootProvider],
    live: _RefSet,
    before: datetime,
    tick: Progress,
) -> None:
    for provider in providers:
        label = provider.describe()
        for h in provider.hashes():
            live.add(h, label)
    tick("mark", len(live))
    _mark_composites(store.catalog, live, before)
    tick("mark", len(live))


def _mark_composites(catalog, live: _RefSet, before: datetime) -> None:
    """Mark the parts of every kept composite."""
    # Composites keep their parts. Kept composites are the marked ones and
    # the young ones (which the sweep will not touch); parts may themselves
    # be composites, so repeat until nothing new is marked. The catalog
    # lists composites in hash order, which the mark set's join needs.
    pending = list(catalog.iter_composites())
    changed = True
    while pending and changed:
        changed = False
        still = []
        for comp, marked in live.join(pending):
            if marked or comp.put_time > before:
                for part in comp.parts().hashes:
                    live.add(part, "composites")
                changed = True
            else:
                still.append(comp)
        pending = still


def _sweep(
    store: Store,
    live: _RefSet,
    before: datetime,
    stats: GCStats,
    lease: Lease,
    tick: Progress,
) -> None:
    catalog = store.catalog
    kept_bytes = 0
    for record, marked in live.join(catalog.iter_blobs(put_before=before)):
        # Before every delete, not every thousand: a pass paused past its
        # lease's ttl (SIGSTOP, a VM frozen) must not go on deleting beside
        # the pass that took the lease over. The check is a clock read.
        lease.check()
        stats.scanned += 1
        if stats.scanned % 1000 == 0:
            tick("sweep", stats.scanned)
        if marked:
            stats.count += 1
            kept_bytes += record.size
            stats.max_size = max(stats.max_size, record.size)
            continue
        if stats.dry_run:
            stats.deleted += 1
            stats.reclaimed_bytes += 0 if record.is_composite else record.size
            continue
        if not catalog.delete_blob_if(record.hash, record.name, before):
            continue  # touched or replaced concurrently: keep it
        stats.deleted += 1
        if record.name is None:
            continue  # a composite has no bytes of its own
        stats.reclaimed_bytes += record.size
        try:
            store.backend.remove(record.name)
        except BlobStoreError as exc:
            stats.errors += 1
            log.error(
                "cannot remove backend object %s of blob %s: %s",
                record.name,
                record.hash,
                exc,
            )
    stats.mean_size = kept_bytes // stats.count if stats.count else 0
    stats.roots = live.distinct  # exact now: the join has counted the set
    tick("sweep", stats.scanned)


def _sweep_orphans(
    store: Store, cutoff: datetime, stats: GCStats, lease: Lease, tick: Progress
) -> None:
    batch = []
    for obj in store.backend.list():
        if obj.mtime <= cutoff:
            batch.append(obj)
        if len(batch) >= 1000:
            lease.check()
            _remove_orphans(store, batch, stats)
            batch = []
            tick("orphans", stats.orphans_swept)
    lease.check()
    _remove_orphans(store, batch, stats)
    tick("orphans", stats.orphans_swept)


def _remove_orphans(store: Store, batch: list, stats: GCStats) -> None:
    if not batch:
        return
    known = store.catalog.known_names([o.name for o in batch])
    for obj in batch:
        if obj.name in known:
            continue
        stats.orphans_swept += 1
        stats.orphan_bytes += obj.size
        if stats.dry_run:
            continue
        try:
            store.backend.remove(obj.name)
        except BlobStoreError as exc:
            stats.errors += 1
            log.error("cannot remove orphan backend object %s: %s", obj.name, exc)
