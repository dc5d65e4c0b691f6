"""The read cache (blobstore.backends.cache) over every remote in REMOTES.

The Backend contract runs over ``CacheBackend(remote)``; the rest checks what
the cache adds: hits and misses, single-flight fills that readers stream
from, verification of fills and of cached copies, eviction in LRU order,
restarts, a stopped remote, range reads, prefetch, several processes.
"""

from __future__ import annotations

import fcntl
import io
import multiprocessing
import os
import threading

import pytest

from blobstore import Store
from blobstore.backends.cache import CacheBackend
from blobstore.backends.cache.layout import Layout
from blobstore.backends.cache.layout import Meta
from blobstore.backends.local import LocalBackend
from blobstore.backends.memory import MemoryBackend
from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore.errors import BlobNotFound
from blobstore.errors import Corrupt
from blobstore.errors import Unavailable
from blobstore.hashing import hash_bytes
from tests.backend_contract import BackendContract
from tests.cache_support import REMOTES
from tests.cache_support import InstrumentedRemote
from tests.cache_support import make_cache
from tests.cache_support import read_in_process
from tests.factories import _swift_backend
from tests.helpers import DataSource
from tests.helpers import FailingReader


@pytest.fixture(params=sorted(REMOTES))
def remote(request, tmp_path):
    """The instrumented remote, over each backend in REMOTES."""
    return InstrumentedRemote(REMOTES[request.param](tmp_path, request))


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def cache(remote, cache_dir):
    cache = make_cache(remote, cache_dir, keep_on_put=False)
    yield cache
    remote.gate.set()  # never leave a fill waiting on a test gate
    cache.close()


def put(backend, name: str, data: bytes) -> None:
    backend.put(name, io.BytesIO(data), len(data))


def read(backend, name: str) -> bytes:
    f, size = backend.open(name)
    with f:
        data = f.read()
    assert len(data) == size
    return data


def copies(cache_dir) -> set[str]:
    """Names with a committed copy (data file) in the cache directory."""
    return {p.name for p in (cache_dir / "objects").glob("*/*") if "." not in p.name}


def leftovers(cache_dir) -> list[str]:
    return sorted(p.name for p in (cache_dir / "tmp").iterdir())


# -- the Backend contract ---------------------------------------------------


class TestCacheBackendContract(BackendContract):
    @pytest.fixture(params=[True, False], ids=["keep_on_put", "read_fill"])
    def backend(self, request, remote, cache_dir):
        cache = make_cache(remote, cache_dir, keep_on_put=request.param)
        yield cache
        cache.close()

    def test_open_after_put_and_read_is_cached(self, backend, cache_dir):
        data = os.urandom(300_000)
        put(backend, "twice", data)
        assert read(backend, "twice") == data
        backend.wait_idle()
        assert read(backend, "twice") == data
        assert copies(cache_dir) == {"twice"}
        assert leftovers(cache_dir) == []

    def test_failing_put_leaves_no_copy(self, backend, cache_dir):
        with pytest.raises(ConnectionResetError):
            backend.put("broken", FailingReader(os.urandom(100_000)), 200_000)
        assert copies(cache_dir) == set()
        assert leftovers(cache_dir) == []


# -- hits and misses ----------------------------------------------------------


def test_miss_fills_then_hits(cache, remote, cache_dir):
    data = os.urandom(700_000)
    put(cache, "obj", data)
    assert read(cache, "obj") == data
    assert cache.wait_idle()
    assert read(cache, "obj") == data
    assert read(cache, "obj") == data
    assert remote.opens["obj"] == 1
    stats = cache.cache_stats()
    assert (stats["misses"], stats["hits"], stats["fills"]) == (1, 2, 1)
    assert stats["remote_bytes"] == len(data)
    assert stats["cache_bytes"] == 3 * len(data)
    assert stats["size_bytes"] == len(data)
    assert stats["entries"] == 1


def test_keep_on_put_serves_the_first_read_from_the_cache(remote, cache_dir):
    cache = make_cache(remote, cache_dir, keep_on_put=True)
    try:
        data = os.urandom(500_000)
        put(cache, "kept", data)
        assert copies(cache_dir) == {"kept"}
        assert read(cache, "kept") == data
        assert remote.opens["kept"] == 0
        assert cache.cache_stats()["hits"] == 1
    finally:
        cache.close()


def test_keep_on_put_skips_objects_over_max_object_size(remote, cache_dir):
    cache = make_cache(remote, cache_dir, keep_on_put=True, max_object_size=1000)
    try:
        put(cache, "small", b"s" * 1000)
        put(cache, "large", b"l" * 1001)
        cache.put("unsized", io.BytesIO(b"u" * 1001), None)
        assert copies(cache_dir) == {"small"}
        assert read(cache, "large") == b"l" * 1001
        assert read(cache, "unsized") == b"u" * 1001
        cache.wait_idle()
        assert copies(cache_dir) == {"small"}  # not filled on read either
        assert leftovers(cache_dir) == []
    finally:
        cache.close()


def test_stats_adds_cache_figures_to_the_remote_stats(cache):
    stats = cache.stats()
    assert stats["remote"] == "instrumented"
    assert stats["cache"]["max_size_bytes"] == 1 << 30


def test_hit_reader_seeks_and_reads_across_blocks(cache):
    data = os.urandom(3 * 256 * 1024 + 1000)
    put(cache, "blocks", data)
    read(cache, "blocks")
    cache.wait_idle()
    f, size = cache.open("blocks")
    with f:
        for pos, n in [(0, 10), (256 * 1024 - 5, 10), (100, 600_000), (size - 3, 10)]:
            f.seek(pos)
            assert f.read(n) == data[pos : pos + n]
        f.seek(10)
        buf = bytearray(256 * 1024)
        f.seek(256 * 1024)
        assert f.readinto(buf) == len(buf)  # a whole block, straight in
        assert bytes(buf) == data[256 * 1024 : 512 * 1024]
    assert cache.cache_stats()["corrupt"] == 0


# -- single flight --------------------------------------------------------------


def test_concurrent_readers_share_one_remote_read_and_all_stream(cache, remote):
    size = 5 * 1024 * 1024 + 11
    data = os.urandom(size)
    put(cache, "hot", data)
    head = 64 * 1024
    # The remote hands out `head` bytes, then holds until every reader has
    # read its head: readers stream before the fill is complete.
    remote.gate_after = head
    remote.gate.clear()
    readers = 6
    got_head = threading.Barrier(readers + 1)
    results: dict[int, bytes] = {}
    errors: list[BaseException] = []

    def reader(i: int) -> None:
        try:
            f, n = cache.open("hot")
            with f:
                first = f.read(head)
                got_head.wait(30)
                results[i] = first + f.read()
        except BaseException as exc:  # reported below
            errors.append(exc)
            got_head.abort()

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(readers)]
    for t in threads:
        t.start()
    got_head.wait(30)
    assert remote.bytes_read < size  # every reader got bytes; the fill is held
    remote.gate.set()
    for t in threads:
        t.join(30)
    assert not errors
    assert all(results[i] == data for i in range(readers))
    assert remote.opens["hot"] == 1
    assert remote.bytes_read == size
    cache.wait_idle()
    stats = cache.cache_stats()
    assert (stats["misses"], stats["fills"], stats["fill_errors"]) == (readers, 1, 0)


def test_concurrent_misses_of_a_missing_object_all_get_not_found(cache):
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def reader():
        start.wait(30)
        try:
            cache.open("absent")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(errors) == 4
    assert all(isinstance(e, BlobNotFound) for e in errors)


# -- fills that go wrong ------------------------------------------------------


def test_fill_interrupted_midway_leaves_no_copy_and_the_reader_recovers(
    cache, remote, cache_dir
):
    data = os.urandom(3 * 1024 * 1024)
    put(cache, "flaky", data)
    remote.fail_opens = {1}  # the fill's stream drops after 100 kB
    remote.fail_after = 100_000
    assert read(cache, "flaky") == data  # carried on from a new remote stream
    cache.wait_idle()
    assert copies(cache_dir) == set()
    assert leftovers(cache_dir) == []
    assert cache.cache_stats()["fill_errors"] == 1
    assert remote.opens["flaky"] == 2
    # The next read fills it properly.
    assert read(cache, "flaky") == data
    cache.wait_idle()
    assert copies(cache_dir) == {"flaky"}


def test_fill_failing_every_time_raises_to_the_reader(cache, remote, cache_dir):
    data = os.urandom(2 * 1024 * 1024)
    put(cache, "dead", data)
    remote.fail_all = True
    remote.fail_after = 300_000
    f, _ = cache.open("dead")
    with f, pytest.raises(Unavailable):
        f.read()
    cache.wait_idle()
    assert copies(cache_dir) == set()
    assert leftovers(cache_dir) == []


def test_fill_of_content_with_the_wrong_hash_is_never_kept(cache, cache_dir):
    data = os.urandom(600_000)
    put(cache, "lying", data)
    f, _ = cache.open_blob("lying", hash_bytes(b"something else"))
    with f, pytest.raises(Corrupt, match="does not hold blob"):
        f.read()
    cache.wait_idle()
    assert copies(cache_dir) == set()
    assert leftovers(cache_dir) == []
    assert cache.cache_stats()["fill_errors"] == 1


def test_fill_verified_against_the_hash_records_it(cache, cache_dir):
    data = os.urandom(600_000)
    put(cache, "honest", data)
    f, _ = cache.open_blob("honest", hash_bytes(data))
    with f:
        assert f.read() == data
    cache.wait_idle()
    meta = Layout(cache_dir).read_meta("honest")
    assert meta is not None and meta.sha384 == hash_bytes(data)
    # A copy recorded for one blob is not served as another.
    f, _ = cache.open_blob("honest", hash_bytes(b"other"))
    f.close()
    assert cache.cache_stats()["corrupt"] == 1


# -- damaged copies -----------------------------------------------------------


def _filled(cache, name: str, data: bytes, cache_dir):
    put(cache, name, data)
    read(cache, name)
    cache.wait_idle()
    path = Layout(cache_dir).data_path(name)
    assert path.exists()
    return path


def test_corrupted_copy_is_detected_served_right_and_refetched(
    cache, remote, cache_dir
):
    data = os.urandom(1024 * 1024)
    path = _filled(cache, "rot", data, cache_dir)
    with open(path, "r+b") as f:  # flip one bit in the second block
        f.seek(300_000)
        byte = f.read(1)
        f.seek(300_000)
        f.write(bytes([byte[0] ^ 1]))
    assert read(cache, "rot") == data  # the damaged block came from the remote
    assert cache.cache_stats()["corrupt"] == 1
    assert not path.exists()
    assert remote.opens["rot"] == 2
    assert read(cache, "rot") == data  # refetched ...
    cache.wait_idle()
    assert path.exists()
    assert read(cache, "rot") == data  # ... and served from the cache again
    assert remote.opens["rot"] == 3


def test_truncated_copy_is_a_miss(cache, remote, cache_dir):
    data = os.urandom(400_000)
    path = _filled(cache, "short", data, cache_dir)
    os.truncate(path, 1000)
    assert read(cache, "short") == data
    assert cache.cache_stats()["corrupt"] == 1
    assert remote.opens["short"] == 2


def test_copy_with_a_garbled_sidecar_is_a_miss(cache, remote, cache_dir):
    data = os.urandom(400_000)
    _filled(cache, "garbled", data, cache_dir)
    Layout(cache_dir).meta_path("garbled").write_bytes(b"{not json")
    assert read(cache, "garbled") == data
    assert remote.opens["garbled"] == 2


def test_sidecar_round_trip_and_rejects():
    meta = Meta(5, 4, __import__("array").array("I", [1, 2]), None)
    assert Meta.from_bytes(meta.to_bytes()) == meta
    for bad in [
        b"",
        b"[]",
        b'{"v": 1}',
        meta.to_bytes().replace(b'"size": 5', b'"size": 9'),
    ]:
        with pytest.raises(ValueError):
            Meta.from_bytes(bad)


# -- restarts ---------------------------------------------------------------


def test_restart_keeps_the_cache_and_drops_leftovers(remote, cache_dir):
    data = os.urandom(500_000)
    first = make_cache(remote, cache_dir, keep_on_put=False)
    put(first, "kept", data)
    read(first, "kept")
    first.wait_idle()
    first.close()
    # Leftovers of a crash: a fill and its sidecar, an orphan sidecar.
    (cache_dir / "tmp" / "dead.fill").write_bytes(b"half")
    (cache_dir / "tmp" / "dead.meta").write_bytes(b"{}")
    orphan = Layout(cache_dir).meta_path("orphan")
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"{}")
    remote.opens.clear()
    second = make_cache(remote, cache_dir, keep_on_put=False)
    try:
        assert read(second, "kept") == data
        assert remote.opens["kept"] == 0
        second.wait_idle()  # its first scan has run
        assert leftovers(cache_dir) == []
        assert not orphan.exists()
        assert second.cache_stats()["size_bytes"] == len(data)
        assert second.cache_stats()["entries"] == 1
    finally:
        second.close()


def test_a_live_fill_of_another_process_is_not_swept(remote, cache_dir):
    layout = Layout(cache_dir)
    fd = layout.lock_fill("busy")  # held as if by another live process
    try:
        cache = make_cache(remote, cache_dir)
        cache.close()
        assert (cache_dir / "tmp" / "busy.fill").exists()
    finally:
        layout.abandon_fill("busy", fd)
    assert leftovers(cache_dir) == []


# -- a stopped remote ---------------------------------------------------------


def test_stopped_remote_cached_objects_still_read(cache, remote):
    data = os.urandom(300_000)
    put(cache, "cached", data)
    put(cache, "uncached", b"x")
    read(cache, "cached")
    cache.wait_idle()
    remote.stopped = True
    assert read(cache, "cached") == data
    with pytest.raises(Unavailable):
        cache.open("uncached")
    with pytest.raises(Unavailable):
        cache.check()
    with pytest.raises(Unavailable):
        cache.put("new", io.BytesIO(b"y"), 1)
    with pytest.raises(Unavailable):
        cache.remove("cached")
    assert read(cache, "cached") == data  # a failed remove keeps the copy


# -- range reads ----------------------------------------------------------------


def test_range_read_of_an_uncached_object_does_not_wait_for_the_download(
    cache, remote, cache_dir
):
    size = 24 * 1024 * 1024
    expected = os.urandom(size)
    put(cache, "big", expected)
    remote.gate_after = 1024 * 1024  # the fill gets 1 MiB, then is held
    remote.gate.clear()
    f, got = cache.open("big")
    with f:
        assert got == size
        f.seek(size - 100)
        assert f.read(100) == expected[-100:]
        f.seek(10 * 1024 * 1024)
        assert f.read(1000) == expected[10 * 1024 * 1024 : 10 * 1024 * 1024 + 1000]
        assert remote.bytes_read < 3 * 1024 * 1024  # not the whole object
        remote.gate.set()
        f.seek(0)
        assert f.read() == expected
    cache.wait_idle()
    assert copies(cache_dir) == {"big"}  # the fill went on in the background


# -- eviction -----------------------------------------------------------------


def test_eviction_follows_lru_order(remote, cache_dir):
    cache = make_cache(
        remote, cache_dir, keep_on_put=False, max_size=100_000, low_water=0.5
    )
    try:
        blobs = {name: os.urandom(20_000) for name in "abcde"}
        for name, data in blobs.items():
            put(cache, name, data)
        for name in "abcd":
            read(cache, name)
            cache.wait_idle()
        assert copies(cache_dir) == set("abcd")  # 80 kB: under high water
        read(cache, "a")  # a is now the most recently used
        read(cache, "e")  # 100 kB > 90 kB: evict the LRU down to 50 kB
        assert cache.wait_idle()
        assert copies(cache_dir) == {"a", "e"}
        stats = cache.cache_stats()
        assert (stats["evictions"], stats["evicted_bytes"]) == (3, 60_000)
        assert stats["size_bytes"] == 40_000
        assert all(read(cache, n) == d for n, d in blobs.items())
    finally:
        cache.close()


def test_no_fill_beyond_max_size(remote, cache_dir):
    cache = make_cache(remote, cache_dir, keep_on_put=False, max_size=100_000)
    try:
        put(cache, "a", os.urandom(25_000))
        put(cache, "b", os.urandom(25_001))  # over max_object_size (max / 4)
        read(cache, "a")
        read(cache, "b")
        cache.wait_idle()
        assert copies(cache_dir) == {"a"}
    finally:
        cache.close()


def test_low_free_space_evicts_everything_and_stops_filling(remote, cache_dir):
    data = os.urandom(100_000)
    first = make_cache(remote, cache_dir, keep_on_put=False)
    put(first, "x", data)
    read(first, "x")
    first.wait_idle()
    first.close()
    # No filesystem has 2**62 bytes free: the floor is always breached.
    second = make_cache(remote, cache_dir, keep_on_put=False, min_free=1 << 62)
    try:
        assert second.wait_idle()
        assert copies(cache_dir) == set()
        assert second.cache_stats()["evictions"] == 1
        assert read(second, "x") == data
        second.wait_idle()
        assert copies(cache_dir) == set()
    finally:
        second.close()


def test_remove_removes_the_copy(cache, remote, cache_dir):
    data = os.urandom(100_000)
    _filled(cache, "doomed", data, cache_dir)
    cache.remove("doomed")
    assert copies(cache_dir) == set()
    with pytest.raises(BlobNotFound):
        cache.open("doomed")
    assert cache.cache_stats()["size_bytes"] == 0


def test_remove_during_a_fill_keeps_nothing(cache, remote, cache_dir):
    size = 4 * 1024 * 1024
    data = os.urandom(size)
    put(cache, "going", data)
    remote.gate_after = 1024 * 1024
    remote.gate.clear()
    f, _ = cache.open("going")
    with f:
        assert f.read(1000) == data[:1000]
        cache.remove("going")
        remote.gate.set()
        with pytest.raises(BlobNotFound):
            f.read()  # the rest would come from the remote: gone
    cache.wait_idle()
    assert copies(cache_dir) == set()
    assert leftovers(cache_dir) == []


# -- hits as plain files -------------------------------------------------------


def test_unverified_hits_are_plain_files_for_sendfile(remote, cache_dir):
    cache = make_cache(remote, cache_dir, keep_on_put=True, verify_reads=False)
    try:
        put(cache, "plain", b"plain bytes")
        f, size = cache.open("plain")
        with f:
            assert os.fstat(f.fileno()).st_size == size == 11
            assert f.read() == b"plain bytes"
    finally:
        cache.close()


# -- prefetch ---------------------------------------------------------------


def test_reading_part_k_of_a_composite_prefetches_part_k_plus_1(tmp_path, remote):
    # Uploaded without the cache (finishing an upload reads every part).
    writer = Store(SQLiteCatalog(tmp_path / "catalog.db"), remote, min_part_size=10)
    parts = [os.urandom(200_000) for _ in range(3)]
    upload = writer.new_upload()
    offset = 0
    for i, part in enumerate(parts):
        writer.put_part(
            upload, i, io.BytesIO(part), len(part), hash_bytes(part), offset
        )
        offset += len(part)
    _, whole = writer.finish_upload(upload, [hash_bytes(p) for p in parts])
    names = [writer.stat(hash_bytes(p)).name for p in parts]
    writer.catalog.close()
    remote.opens.clear()
    cache = make_cache(remote, tmp_path / "cache")
    store = Store(SQLiteCatalog(tmp_path / "catalog.db"), cache)
    try:
        with store.open(whole) as blob:
            assert blob.read(1000) == parts[0][:1000]
            cache.wait_idle()
            # Part 1 was fetched while part 0 was being read ...
            assert remote.opens[names[1]] == 1
            assert remote.opens[names[2]] == 0
            assert cache.cache_stats()["prefetches"] == 1
            assert blob.read() == b"".join(parts)[1000:]
        cache.wait_idle()
        # ... so reading it cost no second remote read.
        # (Part 2's prefetch may lose the race to the reader: one read anyway.)
        assert [remote.opens[n] for n in names] == [1, 1, 1]
    finally:
        store.close()


def test_prefetch_is_only_a_hint(cache, remote):
    cache.prefetch("../bad")  # never raises
    cache.prefetch("missing")
    put(cache, "p", b"data")
    cache.prefetch("p")
    cache.wait_idle()
    remote.stopped = True
    assert read(cache, "p") == b"data"


# -- several processes ----------------------------------------------------------


def test_processes_sharing_a_cache_directory_fill_once(tmp_path):
    remote_dir, cache_dir = tmp_path / "remote", tmp_path / "cache"
    size = 8 * 1024 * 1024
    from blobstore.backends.local import LocalBackend

    LocalBackend(remote_dir).put("shared", DataSource(size, 5), size)
    ctx = multiprocessing.get_context("spawn")
    procs = 4
    with ctx.Manager() as manager:
        barrier = manager.Barrier(procs)
        with ctx.Pool(procs) as pool:
            results = pool.starmap(
                read_in_process,
                [(str(remote_dir), str(cache_dir), "shared", barrier)] * procs,
            )
    assert all(r["digest"] == DataSource.digest(size, 5) for r in results)
    assert sum(r["fills"] for r in results) == 1
    assert copies(cache_dir) == {"shared"}
    assert leftovers(cache_dir) == []


# -- metrics and lifecycle ----------------------------------------------------


def test_counters_are_exported_to_prometheus(cache):
    prometheus_client = pytest.importorskip("prometheus_client")
    put(cache, "m", b"metric")
    read(cache, "m")
    cache.wait_idle()
    read(cache, "m")
    text = prometheus_client.generate_latest().decode()
    label = f'path="{cache.path}"'
    assert f"blobstore_cache_hits_total{{{label}}} 1.0" in text
    assert f"blobstore_cache_misses_total{{{label}}} 1.0" in text
    assert f"blobstore_cache_size_bytes{{{label}}} 6.0" in text


def test_closed_cache_refuses_reads(remote, cache_dir):
    cache = make_cache(remote, cache_dir)
    cache.close()
    cache.close()  # idempotent
    with pytest.raises(Unavailable):
        cache.open("anything")


def test_bad_cache_directory_is_unavailable(remote, tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(Unavailable, match="cannot use cache directory"):
        CacheBackend(remote, tmp_path / "file" / "cache", 1 << 20)


# -- a failing cache disk --------------------------------------------------------


@pytest.fixture
def unwritable_fills(monkeypatch):
    """Fill files whose writes fail (EBADF), as on a failing cache disk."""
    real = Layout.lock_fill

    def lock_fill(self, name):
        fd = real(self, name)
        if fd is None:
            return None
        read_only = os.open(self.fill_path(name), os.O_RDONLY)
        os.close(fd)
        fcntl.flock(read_only, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return read_only

    monkeypatch.setattr(Layout, "lock_fill", lock_fill)


def test_cache_disk_failing_during_a_fill_serves_from_the_remote(
    cache, remote, cache_dir, unwritable_fills
):
    data = os.urandom(2 * 1024 * 1024)
    put(cache, "disk", data)
    assert read(cache, "disk") == data
    cache.wait_idle()
    assert copies(cache_dir) == set()
    assert leftovers(cache_dir) == []
    assert cache.cache_stats()["fill_errors"] == 1


def test_cache_disk_failing_during_a_put_keeps_the_put(
    remote, cache_dir, unwritable_fills
):
    cache = make_cache(remote, cache_dir, keep_on_put=True)
    try:
        data = os.urandom(300_000)
        put(cache, "stored", data)
        assert copies(cache_dir) == set()
        assert leftovers(cache_dir) == []
        assert read(cache, "stored") == data
    finally:
        cache.close()


# -- a real Swift outage ----------------------------------------------------------


def test_swift_outage_cached_blobs_still_read_through_the_store(request, tmp_path):
    server = request.getfixturevalue("swift_server")
    swift = _swift_backend(tmp_path, request)
    store = Store(
        SQLiteCatalog(tmp_path / "catalog.db"),
        make_cache(swift, tmp_path / "cache", keep_on_put=False),
    )
    try:
        hot, cold = os.urandom(3 * 1024 * 1024), os.urandom(1000)
        hot_hash = store.put(io.BytesIO(hot)).hash
        cold_hash = store.put(io.BytesIO(cold)).hash
        with store.open(hot_hash) as f:
            assert f.read() == hot  # the miss fills the cache
        store.backend.wait_idle()
        with server.outage():
            server.stop_proxy()
            with store.open(hot_hash) as f:
                assert f.read() == hot
            with pytest.raises(Unavailable, match="Swift"):
                store.open(cold_hash)
            with pytest.raises(Unavailable):
                store.put(io.BytesIO(b"new"))
    finally:
        store.close()


def test_purge_trash_reaches_the_remote_through_the_cache(tmp_path):
    """`blobstore gc` empties the erasure trash through whatever wraps it."""

    class Remote(LocalBackend):
        purges = 0

        def purge_trash(self) -> int:
            Remote.purges += 1
            return super().purge_trash() + 7

    cache = make_cache(Remote(tmp_path / "remote", fsync=False), tmp_path / "cache")
    try:
        assert cache.purge_trash() >= 7
        assert Remote.purges == 1
    finally:
        cache.close()


def test_the_cache_offers_its_metric_collectors(cache):
    assert len(cache.metric_collectors()) == 1
    assert MemoryBackend().metric_collectors() == []


def test_healing_is_the_remotes(tmp_path, cache_dir):
    from blobstore.errors import BadParams
    from tests.erasure_helpers import delete_shard
    from tests.erasure_helpers import make_set

    plain = make_cache(MemoryBackend(), cache_dir)
    assert not plain.can_heal and plain.origin is plain.remote
    with pytest.raises(BadParams):
        plain.heal()
    plain.close()

    drives = make_set(tmp_path / "drives", 6, 2, fsync=False)
    cache = make_cache(drives, tmp_path / "cache2", keep_on_put=True)
    put(cache, "obj", b"kept twice" * 1000)
    delete_shard(drives, "obj", 0)
    assert cache.can_heal and cache.origin is drives
    report = cache.heal("obj")
    assert (report.healed, report.shards_rebuilt) == (1, 1)
    assert cache.heal().healthy == 1
    cache.close()
