"""The erasure-posix backend under faults: lost and broken drives, bitrot,
too many failures, failed writes, crashes, and healing."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from blobstore.errors import BlobNotFound
from blobstore.errors import ReadQuorumError
from blobstore.errors import Unavailable
from blobstore.errors import WriteQuorumError
from blobstore.hashing import CHUNK_SIZE
from tests.backend_contract import names
from tests.erasure_helpers import break_drive
from tests.erasure_helpers import corrupt_shard
from tests.erasure_helpers import delete_shard
from tests.erasure_helpers import make_set
from tests.erasure_helpers import put_bytes
from tests.erasure_helpers import read_back
from tests.erasure_helpers import replace_drive
from tests.erasure_helpers import shard_drive

BLOCK = 16 * 1024
LAYOUTS = [(4, 2), (6, 2), (5, 1)]


@pytest.fixture(params=LAYOUTS, ids=lambda p: f"{p[0]}drives-{p[1]}parity")
def layout(request):
    return request.param


@pytest.fixture
def backend(tmp_path, layout):
    drives, parity = layout
    backend = make_set(tmp_path, drives, parity, block_size=BLOCK, fsync=False)
    yield backend
    backend.close()


def sample(size: int = 5 * BLOCK + 123) -> bytes:
    return os.urandom(size)


def fragment_size(backend, name: str) -> int:
    drive = shard_drive(backend, name, 0)
    with open(drive.meta_path(name), "rb") as f:
        header = f.read(512)
    import json

    return json.loads(header)["fragment_size"]


def no_files(directory: Path) -> bool:
    """True if *directory* holds no files (empty fan directories may stay)."""
    return not [p for p in directory.rglob("*") if not p.is_dir()]


def absent_error(backend, offline: int) -> type[Exception]:
    """What opening a name that no reachable drive has raises.

    "Not found" only when the reachable drives are too many for a committed
    write (on at least k drives) to hide on the unreachable ones.
    """
    reachable = backend.layout.drives - offline
    if reachable > backend.layout.drives - backend.layout.data:
        return BlobNotFound
    return ReadQuorumError


# -- tolerated failures: exact bytes, damage recorded, heal repairs ------------------


def test_missing_shards_up_to_parity_are_tolerated(backend):
    m = backend.layout.parity
    data = sample()
    put_bytes(backend, "blob1", data)
    for j in range(m):  # data shards: the reader must fall back to parity
        delete_shard(backend, "blob1", j)
    assert read_back(backend, "blob1") == data
    assert "blob1" in backend.needs_heal()
    report = backend.heal()
    assert (report.scanned, report.healed, report.shards_rebuilt) == (1, 1, m)
    assert report.ok
    assert backend.needs_heal() == set()
    assert all(d.shard_path("blob1").exists() for d in backend.drives)
    assert read_back(backend, "blob1") == data
    assert backend.needs_heal() == set()


@pytest.mark.parametrize("how", ["removed", "file"])
def test_offline_drives_up_to_parity_are_tolerated(backend, how):
    m = backend.layout.parity
    data = sample()
    put_bytes(backend, "blob1", data)
    for j in range(m):
        break_drive(shard_drive(backend, "blob1", j), how)
    assert read_back(backend, "blob1") == data
    assert "blob1" in backend.needs_heal()
    # With the drives still gone, healing cannot place the shards.
    report = backend.heal()
    assert report.degraded == ["blob1"] and not report.ok
    # New, empty disks where the dead ones were: heal formats and rebuilds.
    for j in range(m):
        replace_drive(shard_drive(backend, "blob1", j))
    report = backend.heal()
    assert report.healed == 1 and report.shards_rebuilt == m and report.ok
    for j in range(m):
        assert shard_drive(backend, "blob1", j).shard_path("blob1").exists()
    assert read_back(backend, "blob1") == data
    assert backend.stats()["drives_online"] == backend.layout.drives


def test_bitrot_up_to_parity_is_detected_and_healed(backend):
    m = backend.layout.parity
    data = sample()
    put_bytes(backend, "rot", data)
    frag = fragment_size(backend, "rot")
    # Different blocks on different shards, and one block hit twice.
    for j in range(m):
        corrupt_shard(backend, "rot", j, offset=frag * j + 100)
    if m > 1:
        corrupt_shard(backend, "rot", m - 1, offset=5)
    assert read_back(backend, "rot") == data
    assert "rot" in backend.needs_heal()
    report = backend.heal()
    assert report.healed == 1 and report.shards_rebuilt == m and report.ok
    # Every shard verifies again: a second heal finds nothing to do...
    report = backend.heal()
    assert (report.healthy, report.healed) == (1, 0)
    # ...and a read, which uses the data shards (the repaired ones among
    # them), meets no damage.
    backend.take_needs_heal()
    assert read_back(backend, "rot") == data
    assert backend.needs_heal() == set()


def test_bitrot_in_a_parity_shard_is_found_by_heal(backend):
    data = sample()
    put_bytes(backend, "rot", data)
    corrupt_shard(backend, "rot", backend.layout.drives - 1, offset=7)
    # Reads prefer data shards, so only the deep scan of heal can see it.
    assert read_back(backend, "rot") == data
    report = backend.heal("rot")
    assert (report.healed, report.shards_rebuilt) == (1, 1)


def test_truncated_shard_and_lost_metadata_are_healed(backend):
    data = sample()
    put_bytes(backend, "cut", data)
    with open(shard_drive(backend, "cut", 0).shard_path("cut"), "r+b") as f:
        f.truncate(10)
    if backend.layout.parity > 1:
        shard_drive(backend, "cut", 1).meta_path("cut").unlink()
    assert read_back(backend, "cut") == data
    report = backend.heal("cut")
    assert report.healed == 1 and report.shards_rebuilt == backend.layout.parity
    assert read_back(backend, "cut") == data


# -- beyond tolerance: a clear error, never wrong bytes ------------------------------


def test_too_many_missing_shards_is_a_read_quorum_error(backend):
    m = backend.layout.parity
    put_bytes(backend, "lost", sample())
    for j in range(m + 1):
        delete_shard(backend, "lost", j)
    with pytest.raises(ReadQuorumError, match="read quorum not met"):
        backend.open("lost")
    report = backend.heal()
    assert report.unrecoverable == ["lost"]


@pytest.mark.parametrize("how", ["removed", "file"])
def test_too_many_offline_drives_is_a_read_quorum_error(backend, how):
    m = backend.layout.parity
    put_bytes(backend, "lost", sample())
    for j in range(m + 1):
        break_drive(shard_drive(backend, "lost", j), how)
    with pytest.raises(ReadQuorumError, match="read quorum not met"):
        backend.open("lost")
    with pytest.raises(absent_error(backend, offline=m + 1)):
        backend.open("never-written")


def test_too_much_bitrot_in_one_block_stops_the_read(backend):
    m = backend.layout.parity
    data = sample()
    put_bytes(backend, "rot", data)
    frag = fragment_size(backend, "rot")
    for j in range(m + 1):  # block 2 of m + 1 shards
        corrupt_shard(backend, "rot", j, offset=2 * frag + 11)
    f, _ = backend.open("rot")
    with f:
        assert f.read(2 * BLOCK) == data[: 2 * BLOCK]  # blocks before are fine
        with pytest.raises(ReadQuorumError, match="block 2"):
            f.read(BLOCK)
        # Range reads decode only the blocks they touch: block 3 on is fine.
        f.seek(3 * BLOCK + 5)
        assert f.read() == data[3 * BLOCK + 5 :]
    report = backend.heal()
    assert report.unrecoverable == ["rot"]
    assert report.healed == 0


def test_bitrot_spread_over_more_shards_than_parity_still_heals(backend):
    """Every block keeps k good fragments, so all of it can be rebuilt."""
    m = backend.layout.parity
    data = sample()
    put_bytes(backend, "spread", data)
    frag = fragment_size(backend, "spread")
    for j in range(m + 1):  # m + 1 damaged shards, each in its own block
        corrupt_shard(backend, "spread", j, offset=j * frag + 3)
    assert read_back(backend, "spread") == data
    report = backend.heal()
    assert report.healed == 1 and report.shards_rebuilt == m + 1
    assert backend.heal().healthy == 1


# -- writes with drives missing --------------------------------------------------------


def test_write_with_too_many_drives_offline_fails_and_leaves_nothing(backend):
    layout = backend.layout
    offline = layout.drives - layout.write_quorum + 1
    for drive in backend.drives[:offline]:
        break_drive(drive, "removed")
    with pytest.raises(WriteQuorumError, match="write quorum not met"):
        put_bytes(backend, "nope", sample())
    assert names(backend) == set()
    for drive in backend.drives[offline:]:
        assert list(drive.tmp.iterdir()) == []
        assert no_files(drive.objects)
    with pytest.raises(absent_error(backend, offline)):
        backend.open("nope")


def test_write_with_tolerable_drives_offline_succeeds_degraded(backend):
    layout = backend.layout
    offline = layout.drives - layout.write_quorum
    for drive in backend.drives[:offline]:
        break_drive(drive, "file")
    data = sample()
    put_bytes(backend, "deg", data)
    assert read_back(backend, "deg") == data
    if offline:
        assert "deg" in backend.needs_heal()
        for drive in backend.drives[:offline]:
            replace_drive(drive)
        report = backend.heal_pending()
        assert report.healed == 1 and report.shards_rebuilt == offline
    assert backend.needs_heal() == set()


class DrivesDieMidStream(io.RawIOBase):
    """A stream that breaks drives after its first chunk: a disk failing
    while a write is in progress."""

    def __init__(self, data: bytes, drives, how: str) -> None:
        super().__init__()
        self._f = io.BytesIO(data)
        self._drives = drives
        self._how = how

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._f.readinto(buffer)
        if self._drives and self._f.tell() > BLOCK:
            for drive in self._drives:
                break_drive(drive, self._how)
            self._drives = []
        return n


def test_drives_failing_during_a_write_beyond_quorum_leave_nothing(backend):
    layout = backend.layout
    dying = backend.drives[: layout.drives - layout.write_quorum + 1]
    stream = DrivesDieMidStream(sample(8 * BLOCK), dying, "removed")
    with pytest.raises(WriteQuorumError):
        backend.put("dies", stream, 8 * BLOCK)
    for drive in backend.drives[len(dying) :]:
        assert list(drive.tmp.iterdir()) == []
        assert no_files(drive.objects)


def test_drives_failing_during_a_write_within_quorum(backend):
    layout = backend.layout
    dying = backend.drives[: layout.drives - layout.write_quorum]
    data = sample(8 * BLOCK)
    backend.put("survives", DrivesDieMidStream(data, dying, "file"), len(data))
    assert read_back(backend, "survives") == data


def test_remove_with_a_drive_offline(backend):
    put_bytes(backend, "rm", sample())
    drive = shard_drive(backend, "rm", 0)
    break_drive(drive, "removed")
    backend.remove("rm")
    with pytest.raises(BlobNotFound):
        backend.open("rm")
    assert names(backend) == set()


def test_remove_fails_when_a_readable_copy_may_remain(backend):
    put_bytes(backend, "rm", sample())
    k = backend.layout.data
    for j in range(k):
        break_drive(shard_drive(backend, "rm", j), "file")
    with pytest.raises(Exception, match="cannot remove"):
        backend.remove("rm")


# -- crashes -------------------------------------------------------------------------

CRASH_SCRIPT = """
import io, os, sys, threading
from blobstore.backends.erasure import ErasureBackend

root, where = sys.argv[1], sys.argv[4]
drives, parity = int(sys.argv[2]), int(sys.argv[3])
backend = ErasureBackend(
    [f"{root}/d{i}" for i in range(drives)], parity=parity, block_size=16384,
    purge_interval=3600,
)
data = bytes(range(256)) * 1000
if where == "stream":
    class Dies(io.RawIOBase):
        def __init__(self):
            self.f = io.BytesIO(data)
        def readable(self):
            return True
        def readinto(self, b):
            if self.f.tell() > 50000:
                os._exit(17)  # the process dies in the middle of the stream
            return self.f.readinto(b)
    backend.put("crashy", Dies(), len(data))
else:
    # Die at the rename that would commit shard number `where` (0-based):
    # exactly that many drives have committed their shard.
    limit = int(where)
    lock = threading.Lock()
    shards = [0]
    real_replace = os.replace
    def replace(src, dst):
        with lock:
            if not str(dst).endswith(".meta"):
                if shards[0] >= limit:
                    os._exit(17)
                shards[0] += 1
            real_replace(src, dst)
    os.replace = replace
    backend.put("crashy", io.BytesIO(data), len(data))
sys.exit(3)  # not reached
"""
CRASH_DATA = bytes(range(256)) * 1000


def crash_in_put(root: Path, drives: int, parity: int, where: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CRASH_SCRIPT,
            str(root),
            str(drives),
            str(parity),
            where,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 17, result.stderr


@pytest.mark.parametrize(("drives", "parity"), [(1, 0), (4, 2)])
@pytest.mark.parametrize("where", ["stream", "0"])
def test_crash_before_commit_leaves_no_blob(tmp_path, drives, parity, where):
    make_set(tmp_path, drives, parity).close()
    crash_in_put(tmp_path, drives, parity, where)
    leftovers = sum(
        len(list((tmp_path / f"d{i}" / "tmp").iterdir())) for i in range(drives)
    )
    assert leftovers > 0  # the crash really left half-written shards
    backend = make_set(tmp_path, drives, parity)
    for i in range(drives):
        assert list((tmp_path / f"d{i}" / "tmp").iterdir()) == []
    with pytest.raises(BlobNotFound):
        backend.open("crashy")
    assert names(backend) == set()
    backend.close()


def test_crash_with_fewer_than_k_shards_committed_is_never_read(tmp_path):
    make_set(tmp_path, 4, 2).close()
    crash_in_put(tmp_path, 4, 2, "1")
    backend = make_set(tmp_path, 4, 2)
    with pytest.raises(ReadQuorumError):
        backend.open("crashy")
    # Listed, so the garbage collector's orphan sweep can remove it.
    assert names(backend) == {"crashy"}
    backend.remove("crashy")
    with pytest.raises(BlobNotFound):
        backend.open("crashy")
    backend.close()


def test_crash_with_a_quorum_committed_is_whole_and_heals(tmp_path):
    make_set(tmp_path, 4, 2).close()
    crash_in_put(tmp_path, 4, 2, "3")
    backend = make_set(tmp_path, 4, 2)
    assert read_back(backend, "crashy") == CRASH_DATA
    report = backend.heal()
    assert report.healed == 1 and report.shards_rebuilt == 1
    backend.close()


# -- healing alongside normal work --------------------------------------------------


def test_heal_runs_alongside_reads_writes_and_removes(tmp_path):
    backend = make_set(tmp_path, 4, 2, block_size=BLOCK, fsync=False)
    blobs = {f"b{i}": os.urandom(3 * BLOCK + i) for i in range(12)}
    for name, data in blobs.items():
        put_bytes(backend, name, data)
        delete_shard(backend, name, 0)
    stop = threading.Event()
    errors: list[BaseException] = []

    def heal_loop() -> None:
        try:
            while not stop.is_set():
                backend.heal()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    healer = threading.Thread(target=heal_loop)
    healer.start()
    try:
        removed = set()
        for round_ in range(3):
            for i, (name, data) in enumerate(sorted(blobs.items())):
                if name in removed:
                    continue
                assert read_back(backend, name) == data
                if i % 4 == round_:
                    backend.remove(name)
                    removed.add(name)
            new = f"n{round_}"
            blobs[new] = os.urandom(2 * BLOCK)
            put_bytes(backend, new, blobs[new])
    finally:
        stop.set()
        healer.join()
    assert not errors
    final = backend.heal()
    assert final.ok
    for name, data in blobs.items():
        if name in removed:
            # Removed stays removed: healing never brings a blob back
            # (a stray shard from a race is an orphan for the GC sweep).
            with pytest.raises((BlobNotFound, ReadQuorumError)):
                backend.open(name)
        else:
            assert read_back(backend, name) == data
    backend.close()


def test_heal_one_missing_name_is_not_found(backend):
    with pytest.raises(BlobNotFound):
        backend.heal("nothing-here")


def test_heal_reports_progress(backend):
    for i in range(3):
        put_bytes(backend, f"p{i}", sample(100))
    seen = []
    report = backend.heal(
        progress=lambda r, name: seen.append((r.scanned, r.total, name))
    )
    assert seen == [(1, 3, "p0"), (2, 3, "p1"), (3, 3, "p2")]
    assert report.healthy == 3


def test_stale_dangling_metadata_is_dropped_by_heal(backend):
    put_bytes(backend, "dm", sample(100))
    for drive in backend.drives:
        drive.shard_path("dm").unlink()  # as if a crash hit between renames
    old = time.time() - 3600
    for drive in backend.drives:
        os.utime(drive.meta_path("dm"), (old, old))
    assert backend.heal().scanned == 1
    assert all(not d.meta_path("dm").exists() for d in backend.drives)


# -- one drive, no parity: bitrot is an error, never wrong bytes -----------------------


def test_one_drive_detects_bitrot(tmp_path):
    backend = make_set(tmp_path, 1, 0, block_size=BLOCK)
    data = sample()
    put_bytes(backend, "solo", data)
    shard = backend.drives[0].shard_path("solo")
    assert shard.read_bytes() == data  # the shard is the blob itself
    corrupt_shard(backend, "solo", 0, offset=BLOCK + 1)
    f, _ = backend.open("solo")
    with f:
        assert f.read(BLOCK) == data[:BLOCK]
        with pytest.raises(ReadQuorumError):
            f.read(BLOCK)
    assert backend.heal().unrecoverable == ["solo"]
    backend.close()


def test_one_drive_reader_keeps_the_file_offset_for_sendfile(tmp_path):
    backend = make_set(tmp_path, 1, 0)
    data = os.urandom(3 * CHUNK_SIZE // 2)
    put_bytes(backend, "sf", data)
    f, size = backend.open("sf")
    with f:
        fd = f.fileno()
        assert os.fstat(fd).st_size == size
        f.seek(100)
        assert os.lseek(fd, 0, os.SEEK_CUR) == 100
        f.read(1000)
        assert os.lseek(fd, 0, os.SEEK_CUR) == 1100
        assert os.pread(fd, 50, 1100) == data[1100:1150]
    backend.close()


def test_multi_drive_reader_has_no_fileno(backend):
    put_bytes(backend, "nf", b"abc")
    f, _ = backend.open("nf")
    with f, pytest.raises(io.UnsupportedOperation):
        f.fileno()


def test_check_and_stats_follow_drive_health(backend):
    layout = backend.layout
    backend.check()
    offline = layout.drives - layout.write_quorum
    for drive in backend.drives[:offline]:
        break_drive(drive, "file")
    backend.check()  # writes still reach a quorum
    stats = backend.stats()
    assert stats["drives_online"] == layout.drives - offline
    assert [d["online"] for d in stats["drives"]] == [False] * offline + [True] * (
        layout.drives - offline
    )
    break_drive(backend.drives[offline], "removed")
    with pytest.raises(Unavailable, match="drives are online"):
        backend.check()


def test_a_name_lock_held_too_long_is_a_clean_unavailable(tmp_path):
    # A holder that hangs (a frozen process, a stuck drive under a remove)
    # must not hang every remove and heal of its stripe on every node.
    from blobstore.backends.erasure.namelock import name_lock

    backend = make_set(tmp_path, 4, 2, block_size=BLOCK, fsync=False)
    with name_lock(backend.drives, "stuck"):
        started = time.monotonic()
        waiting = name_lock(backend.drives, "stuck", timeout=0.3)
        with pytest.raises(Unavailable, match=r"lock of 'stuck' .*locks/st.* 0.3s"):
            waiting.__enter__()
        assert 0.3 <= time.monotonic() - started < 5
    with name_lock(backend.drives, "stuck", timeout=0.3):  # free again
        pass
    backend.close()


def test_remove_waits_while_a_heal_holds_the_name(tmp_path):
    # Heal and remove of one name exclude each other (namelock.py): a remove
    # must not interleave with a heal that could commit shards behind it.
    from blobstore.backends.erasure.namelock import name_lock

    backend = make_set(tmp_path, 4, 2, block_size=BLOCK, fsync=False)
    put_bytes(backend, "held", os.urandom(2 * BLOCK))
    done = threading.Event()

    def remove() -> None:
        backend.remove("held")
        done.set()

    with name_lock(backend.drives, "held"):
        remover = threading.Thread(target=remove)
        remover.start()
        assert not done.wait(0.3), "remove ran while the name was locked"
        assert read_back(backend, "held")  # still whole under the lock
    remover.join(timeout=30)
    assert done.is_set()
    with pytest.raises(BlobNotFound):
        backend.open("held")
    backend.close()
