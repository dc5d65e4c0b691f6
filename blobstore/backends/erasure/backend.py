"""ErasureBackend: blobs as Reed-Solomon shards over N local drives.

Config (``type = "erasure-posix"``)::

    [backend]
    type = "erasure-posix"
    drives = ["/srv/disk1", "/srv/disk2", "/srv/disk3", "/srv/disk4"]
    parity = 2                # m: any m drives may fail; k = N - m
    # block_size = 1048576    # bytes of blob per encoded block
    # reserve_fraction = 0.01 # refuse writes when a drive has less free
    # reserve_bytes = 0       #   space than the larger of these two

Every blob has one shard on every drive: k data shards and m parity shards,
placed by a rotation that depends on the name. Writes need the write quorum
of drives (k, or k + 1 when k == m); reads need any k intact shards and heal
the rest later (see :meth:`ErasureBackend.heal`). ``type = "local"`` is the
one-drive, no-parity case of this backend (see :mod:`blobstore.backends.local`).

The modules of this package each do one job: :mod:`.layout` (the set, its
drives and their format files), :mod:`.codec` (encode/decode a block),
:mod:`.meta` (per-shard metadata and checksums), :mod:`.writer`,
:mod:`.reader`, :mod:`.heal`, :mod:`.trash` and :mod:`.tmpfiles`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import BinaryIO

from blobstore.backends.base import Backend
from blobstore.backends.base import ObjectInfo
from blobstore.backends.base import check_name
from blobstore.backends.erasure import tmpfiles
from blobstore.backends.erasure.codec import codec_for
from blobstore.backends.erasure.codec import get_codec
from blobstore.backends.erasure.heal import Outcome
from blobstore.backends.erasure.heal import Progress
from blobstore.backends.erasure.heal import heal_blob
from blobstore.backends.erasure.heal import iter_names
from blobstore.backends.erasure.layout import Drive
from blobstore.backends.erasure.layout import Layout
from blobstore.backends.erasure.layout import adopt_replaced
from blobstore.backends.erasure.layout import open_drives
from blobstore.backends.erasure.meta import read_meta
from blobstore.backends.erasure.reader import ErasureReader
from blobstore.backends.erasure.reader import gather
from blobstore.backends.erasure.trash import Purger
from blobstore.backends.erasure.trash import move_to_trash
from blobstore.backends.erasure.writer import write_blob
from blobstore.backends.healing import HealReport
from blobstore.errors import BadParams
from blobstore.errors import BlobNotFound
from blobstore.errors import InsufficientStorage
from blobstore.errors import Unavailable
from blobstore.hashing import Readable

__all__ = ["ErasureBackend"]

log = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = 1 << 20
#: Blocks are encoded in one call holding the GIL (ISA-L): keep them moderate.
MAX_BLOCK_SIZE = 64 << 20


class ErasureBackend(Backend):
    """Erasure-coded shards over local drives. See the module docs.

    :param drives: one directory per drive (created if missing).
    :param parity: m, the number of drives that may fail; 0 <= m <= N/2.
    :param block_size: bytes of blob data per encoded block.
    :param fsync: make writes durable before they count (tests may skip it).
    :param reserve_fraction: writes are refused while any drive has less free
        space than this fraction of its size...
    :param reserve_bytes: ...or than this many bytes, whichever is larger.
    :param purge_interval: seconds between background trash purges.
    """

    type_name = "erasure-posix"

    def __init__(
        self,
        drives: Sequence[str | os.PathLike[str]],
        parity: int = 0,
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        fsync: bool = True,
        reserve_fraction: float = 0.01,
        reserve_bytes: int = 0,
        purge_interval: float = 60.0,
    ) -> None:
        if isinstance(drives, str | os.PathLike) or not drives:
            raise BadParams("drives must be a non-empty list of directories")
        if not isinstance(parity, int) or isinstance(parity, bool):
            raise BadParams(f"parity must be an integer, not {parity!r}")
        if not isinstance(block_size, int) or not 4096 <= block_size <= MAX_BLOCK_SIZE:
            raise BadParams(
                f"block_size must be between 4096 and {MAX_BLOCK_SIZE}, "
                f"not {block_size!r}"
            )
        if not 0 <= reserve_fraction < 1 or reserve_bytes < 0:
            raise BadParams("reserve_fraction must be in [0, 1), reserve_bytes >= 0")
        self.layout = Layout(len(drives), parity)
        self.drives: list[Drive] = open_drives([Path(d) for d in drives], self.layout)
        self.block_size = block_size
        self._fsync = fsync
        self._reserve_fraction = reserve_fraction
        self._reserve_bytes = reserve_bytes
        self._codec = codec_for(self.layout.data, self.layout.parity)
        self._heal_lock = threading.Lock()
        self._needs_heal: set[str] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()
        # Leftovers of writes that crashed: nobody holds their locks.
        for drive in self.drives:
            tmpfiles.sweep(drive.tmp)
        self._purger = Purger(self.drives, purge_interval)
        # Empty what an earlier process left in the trash; otherwise the
        # thread starts with the first remove (no idle thread per instance).
        if any(_has_entries(d.trash) for d in self.drives):
            self._purger.kick()

    # -- the Backend contract ------------------------------------------------

    def put(self, name: str, stream: Readable, size: int | None = None) -> None:
        check_name(name)
        self._check_space(size)
        sinks = write_blob(
            name,
            stream,
            drives=self.drives,
            placement=self.layout.placement(name),
            codec=self._codec,
            block_size=self.block_size,
            write_quorum=self.layout.write_quorum,
            fsync=self._fsync,
            parallel=self._parallel,
        )
        missed = [s for s in sinks if not s.committed]
        if missed:
            self._record_damage(
                name,
                "write missed "
                + ", ".join(f"{s.drive.path} ({s.error})" for s in missed),
            )

    def open(self, name: str) -> tuple[BinaryIO, int]:
        check_name(name)
        shards = gather(name, self.drives, self.layout)
        if shards.missing:
            self._record_damage(name, "; ".join(shards.missing.values()))
        try:
            codec = get_codec(shards.meta.codec, shards.meta.k, shards.meta.m)
        except BaseException:
            shards.close()
            raise

        def on_damage(drive: Drive, shard_index: int, problem: str) -> None:
            self._record_damage(name, f"shard {shard_index} on {drive.path}: {problem}")

        reader = ErasureReader(shards, codec, on_damage)
        return reader, reader.size  # type: ignore[return-value]

    def remove(self, name: str) -> None:
        check_name(name)
        unreachable = []
        for drive in self.drives:
            try:
                drive.check_online()
                # The shard first: once it is gone the drive no longer
                # holds the object, whatever happens to the meta file.
                move_to_trash(drive, drive.shard_path(name))
                move_to_trash(drive, drive.meta_path(name))
            except OSError as exc:
                unreachable.append(f"{drive.path}: {exc.strerror or exc}")
        self._purger.kick()
        if len(unreachable) >= self.layout.data:
            # Enough shards may survive there to read the object back.
            raise Unavailable(
                f"cannot remove {name!r}: drives unreachable ({'; '.join(unreachable)})"
            )
        with self._heal_lock:
            self._needs_heal.discard(name)

    def list(self) -> Iterator[ObjectInfo]:
        online = [d for d in self.drives if _online(d)]
        for names in iter_names(online):
            for name in names:
                info = self._info(name, online)
                if info is not None:
                    yield info

    def check(self) -> None:
        online = sum(1 for d in self.drives if _online(d))
        if online < self.layout.write_quorum:
            raise Unavailable(
                f"only {online} of {self.layout.drives} drives are online; "
                f"writes need {self.layout.write_quorum}"
            )

    def stats(self) -> dict[str, Any]:
        drives = []
        for drive in self.drives:
            entry: dict[str, Any] = {"path": str(drive.path), "online": False}
            try:
                drive.check_online()
                st = os.statvfs(drive.path)
            except OSError as exc:
                entry["error"] = exc.strerror or str(exc)
            else:
                entry.update(
                    online=True,
                    free_bytes=st.f_bavail * st.f_frsize,
                    total_bytes=st.f_blocks * st.f_frsize,
                )
            drives.append(entry)
        online = [d for d in drives if d["online"]]
        k = self.layout.data
        with self._heal_lock:
            needs_heal = len(self._needs_heal)
        return {
            "type": self.type_name,
            "data_shards": k,
            "parity_shards": self.layout.parity,
            "write_quorum": self.layout.write_quorum,
            "drives_online": len(online),
            "drives": drives,
            # Each blob puts 1/k of its size on every drive, so the fullest
            # drive bounds what still fits.
            "free_bytes": min((d["free_bytes"] for d in online), default=0) * k,
            "total_bytes": min((d["total_bytes"] for d in online), default=0) * k,
            "needs_heal": needs_heal,
        }

    def close(self) -> None:
        self._purger.close()
        with self._pool_lock:
            if self._pool is not None and self._pool_pid == os.getpid():
                self._pool.shutdown(wait=True)
            self._pool = None

    # -- healing and housekeeping -------------------------------------------

    @property
    def can_heal(self) -> bool:
        # Without parity there is nothing to rebuild from: heal() would only
        # find damage (which `blobstore check` does for any backend).
        return self.layout.parity > 0

    def needs_heal(self) -> set[str]:
        """Names this process saw with missing or damaged shards."""
        with self._heal_lock:
            return set(self._needs_heal)

    def take_needs_heal(self) -> set[str]:
        """Like :meth:`needs_heal`, and forget them (the caller heals them)."""
        with self._heal_lock:
            names, self._needs_heal = self._needs_heal, set()
        return names

    def heal(
        self, name: str | None = None, progress: Progress | None = None
    ) -> HealReport:
        """Rebuild missing and corrupt shards of one blob, or of every blob.

        Reads every shard of every blob scanned (bitrot shows only when read),
        rebuilds what is missing or damaged onto the drives that lack it, and
        reports what was healed and what cannot be. Safe to run alongside
        reads, writes and removes, in this process or another one. Empty
        directories standing in for replaced drives are formatted first.

        :param name: heal only this blob (BlobNotFound if it does not exist).
        :param progress: called after each blob with the report so far.
        """
        for drive in self.drives:
            adopt_replaced(drive, self.layout)
        if name is not None:
            check_name(name)
            report = HealReport(total=1)
            outcome = self._heal_one(name, report, progress)
            if outcome is Outcome.GONE:
                raise BlobNotFound(f"backend object {name!r} not found")
            return report
        report = HealReport(total=sum(len(batch) for batch in iter_names(self.drives)))
        for batch in iter_names(self.drives):
            for each in batch:
                self._heal_one(each, report, progress)
        return report

    def heal_pending(self, progress: Progress | None = None) -> HealReport:
        """Heal the blobs this process saw damaged (:meth:`take_needs_heal`)."""
        for drive in self.drives:
            adopt_replaced(drive, self.layout)
        names = sorted(self.take_needs_heal())
        report = HealReport(total=len(names))
        for name in names:
            self._heal_one(name, report, progress)
        return report

    def purge_trash(self) -> int:
        """Empty the trash and sweep crashed writes' temp files now.

        This also runs in the background; the garbage collector may call it
        to clean up synchronously. Returns how many entries were removed.
        """
        return self._purger.run_once()

    # -- internals ------------------------------------------------------------

    def _heal_one(self, name: str, report: HealReport, progress: Progress | None):
        try:
            outcome, rebuilt = heal_blob(
                name,
                drives=self.drives,
                layout=self.layout,
                fsync=self._fsync,
                parallel=self._parallel,
            )
        except Exception as exc:  # one bad blob must not stop the scan
            log.exception("healing %s failed", name)
            report.scanned += 1
            report.errors.append(f"{name}: {exc}")
            outcome = None
        else:
            report.add(name, outcome, rebuilt)
        with self._heal_lock:
            if outcome in (Outcome.HEALTHY, Outcome.HEALED, Outcome.GONE):
                self._needs_heal.discard(name)
            else:
                self._needs_heal.add(name)
        if progress is not None:
            progress(report, name)
        return outcome

    def _record_damage(self, name: str, problem: str) -> None:
        log.warning("blob %s needs healing: %s", name, problem)
        with self._heal_lock:
            self._needs_heal.add(name)

    def _check_space(self, size: int | None) -> None:
        need = -(-size // self.layout.data) if size else 0
        for drive in self.drives:
            try:
                drive.check_online()
                st = os.statvfs(drive.path)
            except OSError:
                continue  # offline: the write quorum decides
            free = st.f_bavail * st.f_frsize
            reserve = max(
                self._reserve_bytes,
                int(self._reserve_fraction * st.f_blocks * st.f_frsize),
            )
            if free - need < reserve:
                raise InsufficientStorage(
                    f"drive {drive.path} is nearly full: {free} bytes free, "
                    f"{need} needed, {reserve} kept in reserve"
                )

    def _parallel(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """fn over items, per item its result or the OSError it raised.

        The drives' fsyncs and renames overlap this way (they release the
        GIL); one item needs no thread.
        """

        def call(item: Any) -> Any:
            try:
                return fn(item)
            except OSError as exc:
                return exc

        if len(items) <= 1:
            return [call(item) for item in items]
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(
                    max_workers=self.layout.drives,
                    thread_name_prefix="blobstore-erasure",
                )
                self._pool_pid = os.getpid()
            pool = self._pool
        return list(pool.map(call, items))

    def _info(self, name: str, drives: Sequence[Drive]) -> ObjectInfo | None:
        for drive in drives:
            try:
                st = os.stat(drive.shard_path(name))
                fd = os.open(drive.meta_path(name), os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                size = read_meta(fd).size
            except (OSError, ValueError):
                continue
            finally:
                os.close(fd)
            return ObjectInfo(name, size, datetime.fromtimestamp(st.st_mtime, UTC))
        return None  # only dangling meta files: not an object


def _has_entries(directory: Path) -> bool:
    try:
        with os.scandir(directory) as entries:
            return any(True for _ in entries)
    except OSError:
        return False


def _online(drive: Drive) -> bool:
    try:
        drive.check_online()
    except OSError:
        return False
    return True
