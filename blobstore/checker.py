"""Verifying stored blobs end to end: re-read each one from its backend.

:func:`check` reads every plain blob (or one blob: a composite's parts) back
from where its bytes are kept (the backend's ``origin``: past a read cache,
whose copies say nothing of the remote's) and checks that its bytes have the
recorded SHA-384 and size. That catches what a backend's own
checksums cannot (bytes that were wrong before they were stored, a record
pointing at the wrong object) and works for every backend.

What it finds, per blob:

* **healed** -- the backend can heal (erasure-coded, with parity) and the
  read met a damaged or missing shard; the blob was healed and, if the read
  had failed, read again successfully.
* **corrupt** -- the bytes read back have another hash or size, or cannot be
  decoded although all the storage answers (a backend with no redundancy, or
  more damaged shards than the parity covers).
* **missing** -- the record exists but the backend has no such object.
* **unreadable** -- the storage did not answer (a drive offline, a remote
  backend down): nothing can be concluded, so it is never quarantined.

With ``quarantine=True`` the catalog record of each corrupt or missing plain
blob is deleted -- conditionally, like the garbage collector's delete (same
name, put time unchanged), so a concurrent put of the same content wins --
and the blob stops being served: a client that puts the content again
restores it, with fresh bytes. The old backend object becomes an orphan that
the next GC pass sweeps. What was quarantined is kept in the catalog
(:data:`QUARANTINED`) for operators. Composite records are never touched: a
composite with a bad part is reported through that part. A quarantining run
holds the ``check`` lease, so two never run at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from blobstore.clock import utcnow
from blobstore.errors import BlobNotFound
from blobstore.errors import BlobStoreError
from blobstore.errors import Corrupt
from blobstore.errors import HashMismatch
from blobstore.errors import ReadQuorumError
from blobstore.errors import SizeMismatch
from blobstore.hashing import VerifyingReader
from blobstore.lease import Lease
from blobstore.reader import BlobReader
from blobstore.records import BlobRecord

if TYPE_CHECKING:
    from blobstore.store import Store

__all__ = [
    "CHECK_LAST_RUN",
    "QUARANTINED",
    "CheckReport",
    "Problem",
    "check",
    "storage_whole",
]

log = logging.getLogger(__name__)

#: Catalog state keys: the last whole-store check's summary, and the blobs
#: quarantined so far (the most recent :data:`QUARANTINE_LOG_SIZE`).
CHECK_LAST_RUN = "check.last_run"
QUARANTINED = "check.quarantined"
QUARANTINE_LOG_SIZE = 1000
LEASE_NAME = "check"

_CHUNK = 1 << 20


@dataclass
class Problem:
    """One blob that did not read back right."""

    hash: str
    kind: str  # "corrupt", "missing" or "unreadable"
    detail: str
    name: str | None = None
    size: int = 0
    quarantined: bool = False
    #: Why it was not quarantined, when quarantining was asked for.
    kept: str = ""
    #: Composite blobs that contain this blob (directly or through others).
    composites: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    """What a check found. ``total`` is known before the scan (progress)."""

    total: int = 0
    checked: int = 0
    ok: int = 0
    bytes_read: int = 0
    healed: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: Blobs removed or replaced while being checked (not a problem).
    vanished: int = 0
    duration: float = 0.0

    @property
    def clean(self) -> bool:
        """Whether every blob checked now reads back right."""
        return not self.problems

    def count(self, kind: str) -> int:
        return sum(1 for p in self.problems if p.kind == kind)

    @property
    def quarantined(self) -> list[str]:
        return [p.hash for p in self.problems if p.quarantined]

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.update(
            clean=self.clean,
            corrupt=self.count("corrupt"),
            missing=self.count("missing"),
            unreadable=self.count("unreadable"),
            quarantined=self.quarantined,
        )
        return doc


#: ``progress(report, hash)`` after each blob.
Progress = Callable[[CheckReport, str], None]


def storage_whole(store: Store) -> bool:
    """Whether every drive the backend reports is online (a backend without
    drives counts as whole; its outages are errors, not missing data)."""
    try:
        drives = store.backend_stats().get("drives")
    except BlobStoreError:
        return False
    if not isinstance(drives, list):
        return True
    return all(d.get("online") for d in drives)


def check(
    store: Store,
    hash: str | None = None,
    *,
    quarantine: bool = False,
    progress: Progress | None = None,
) -> CheckReport:
    """Verify one blob (*hash*: a composite's plain parts) or every plain
    blob. See the module docstring.

    :raises BlobNotFound: no blob *hash*.
    :raises LeaseHeld: *quarantine* and another quarantining check runs.
    """
    if not quarantine:
        return _run(store, hash, False, progress)
    with Lease(store.catalog, name=LEASE_NAME):
        return _run(store, hash, True, progress)


def _run(
    store: Store, hash: str | None, quarantine: bool, progress: Progress | None
) -> CheckReport:
    started = time.monotonic()
    report = CheckReport()
    if hash is None:
        report.total = store.stats().blobs
        records: Iterator[BlobRecord] = (
            r for r in store.catalog.iter_blobs() if r.name is not None
        )
    else:
        objects, missing_parts = store.object_names(hash)
        report.total = len(objects)
        for text in missing_parts:
            report.problems.append(
                Problem(hash, "missing", text, kept="the part has no record")
            )
        records = _records(store, [h for h, _ in objects])
    for record in records:
        _check_one(store, record, report, quarantine)
        if progress is not None:
            progress(report, record.hash)
    if report.problems:
        _find_composites(store, report)
    if quarantine and report.quarantined:
        _log_quarantine(store, report)
    report.duration = round(time.monotonic() - started, 3)
    if hash is None:
        _record(store, report)
    return report


def _records(store: Store, hashes: list[str]) -> Iterator[BlobRecord]:
    for h in hashes:
        record = store.catalog.get_blob(h)
        if record is not None:
            yield record


def _check_one(
    store: Store, record: BlobRecord, report: CheckReport, quarantine: bool
) -> None:
    report.checked += 1
    kind, detail = _verify(store, record, report)
    backend = store.backend
    if kind != "vanished" and backend.can_heal:
        damaged = record.name in backend.needs_heal()
        if kind is not None or damaged:
            kind, detail = _heal(store, record, report, kind, detail)
    if kind is None:
        report.ok += 1
        return
    if kind == "vanished":
        report.vanished += 1
        return
    if kind == "quorum":
        # Too few good shards. With every drive answering that is damage;
        # with some offline, the missing shards may be on them.
        kind = "corrupt" if storage_whole(store) else "unreadable"
    problem = Problem(record.hash, kind, detail, record.name, record.size)
    log.error("blob %s is %s: %s", record.hash, kind, detail)
    if quarantine:
        _quarantine(store, record, problem)
    report.problems.append(problem)


def _verify(
    store: Store, record: BlobRecord, report: CheckReport
) -> tuple[str | None, str]:
    """(None, "") if the blob reads back right, else (kind, what is wrong)."""
    try:
        # From where the bytes are kept: past a read cache, whose copies
        # were verified when filled and say nothing of the remote's.
        stream, size = store.backend.origin.open_blob(record.object_name(), record.hash)
        with BlobReader(stream, size, record.hash) as reader:
            verifier = VerifyingReader(reader, record.size, record.hash)
            while chunk := verifier.read(_CHUNK):
                report.bytes_read += len(chunk)
    except (HashMismatch, SizeMismatch, Corrupt) as exc:
        return "corrupt", str(exc)
    except ReadQuorumError as exc:
        return "quorum", str(exc)
    except BlobNotFound as exc:
        current = store.catalog.get_blob(record.hash)
        if current is None or current.name != record.name:
            return "vanished", ""  # collected or replaced meanwhile
        return "missing", str(exc)
    except BlobStoreError as exc:
        return "unreadable", f"{type(exc).__name__}: {exc}"
    return None, ""


def _heal(
    store: Store,
    record: BlobRecord,
    report: CheckReport,
    kind: str | None,
    detail: str,
) -> tuple[str | None, str]:
    name = record.object_name()
    try:
        healed = store.backend.heal(name)
    except BlobStoreError as exc:
        log.warning("cannot heal blob %s: %s", record.hash, exc)
        return kind, detail
    if healed.healed:
        log.info("healed blob %s", record.hash)
        report.healed.append(record.hash)
    if kind is None or not healed.healed:
        return kind, detail
    # The read had failed: it must succeed now for the blob to count as good.
    return _verify(store, record, report)


def _quarantine(store: Store, record: BlobRecord, problem: Problem) -> None:
    if problem.kind not in ("corrupt", "missing"):
        problem.kept = "not proof of damage (storage did not answer)"
        return
    # Same condition as GC's delete: a put of the same content since the
    # check read it bumped the put time, and then this matches nothing.
    if store.catalog.delete_blob_if(record.hash, record.name, record.put_time):
        problem.quarantined = True
        log.warning("quarantined blob %s (%s)", record.hash, problem.detail)
    else:
        problem.kept = "changed while being checked"


def _find_composites(store: Store, report: CheckReport) -> None:
    """Name the composites each bad blob is part of (through nested ones
    too), so an operator knows which objects a bad part breaks."""
    parents: dict[str, set[str]] = {}
    for comp in store.catalog.iter_composites():
        for part in comp.parts().hashes:
            parents.setdefault(part, set()).add(comp.hash)
    for problem in report.problems:
        found: set[str] = set()
        pending = [problem.hash]
        while pending:
            for comp in parents.get(pending.pop(), ()):
                if comp not in found:
                    found.add(comp)
                    pending.append(comp)
        problem.composites = sorted(found)


def _log_quarantine(store: Store, report: CheckReport) -> None:
    now = utcnow().isoformat()
    entries = [
        {
            "hash": p.hash,
            "name": p.name,
            "size": p.size,
            "kind": p.kind,
            "detail": p.detail,
            "time": now,
        }
        for p in report.problems
        if p.quarantined
    ]
    previous = store.catalog.get_state(QUARANTINED) or {}
    blobs = (list(previous.get("blobs", [])) + entries)[-QUARANTINE_LOG_SIZE:]
    store.catalog.put_state(
        QUARANTINED,
        {"total": int(previous.get("total", 0)) + len(entries), "blobs": blobs},
    )


def _record(store: Store, report: CheckReport) -> None:
    doc = {
        "finished": utcnow().isoformat(),
        "checked": report.checked,
        "ok": report.ok,
        "healed": len(report.healed),
        "corrupt": report.count("corrupt"),
        "missing": report.count("missing"),
        "unreadable": report.count("unreadable"),
        "quarantined": len(report.quarantined),
        "bytes_read": report.bytes_read,
        "duration": report.duration,
    }
    try:
        store.catalog.put_state(CHECK_LAST_RUN, doc)
    except BlobStoreError as exc:
        log.warning("cannot record the check summary: %s", exc)
