"""GC never deletes a referenced blob, nor one put within the grace period,
when the reference or the put happens *while* a pass runs.

Each test runs a real GC pass in the test's thread and the competing writer
in another thread, over a real SQLite catalog and local backend. The two are
interleaved at a chosen point of the pass through a catalog subclass whose
hook blocks the pass there until the writer is done (events, no sleeps):

* ``sweep`` -- after marking (every root has been read), before the sweep
  reads the blobs to delete;
* ``delete`` -- after the sweep read the doomed blob's record, right before
  its conditional delete.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest

from blobstore import Store
from blobstore.backends.local import LocalBackend
from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore.clock import utcnow
from blobstore.errors import Corrupt
from blobstore.s3.objects import ObjectStore
from tests.helpers import hash_of

HOUR = timedelta(hours=1)
GRACE = timedelta(minutes=30)
WAIT = 30  # seconds; only reached if a test is broken (then it fails)


class HookedCatalog(SQLiteCatalog):
    """Calls ``hook(point, hash)`` where the GC pass reaches *point*."""

    hook: Callable[[str, str | None], None] = staticmethod(lambda point, h: None)

    def iter_blobs(self, put_before=None):
        if put_before is not None:  # the sweep (checks read without a cut-off)
            self.hook("sweep", None)
        return super().iter_blobs(put_before)

    def delete_blob_if(self, hash, name, put_before):
        self.hook("delete", hash)
        return super().delete_blob_if(hash, name, put_before)


@pytest.fixture
def store(tmp_path):
    catalog = HookedCatalog(tmp_path / "catalog.db")
    backend = LocalBackend(tmp_path / "blobs", fsync=False)
    with Store(catalog, backend, min_part_size=1024, max_part_size=1 << 20) as s:
        yield s


def put_old(store: Store, data: bytes) -> str:
    """A blob put two hours ago that nothing references: GC food."""
    return store.put(io.BytesIO(data), now=utcnow() - 2 * HOUR).hash


def read(store: Store, h: str) -> bytes:
    with store.open(h) as f:
        return f.read()


def interleave(
    store: Store, point: str, target: str | None, writer
) -> threading.Thread:
    """Block the pass at *point* (for blob *target*, at ``delete``) until
    *writer* has run in another thread. Returns the started thread."""
    reached, written = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hook(where: str, h: str | None) -> None:
        if where == point and (target is None or h == target) and not reached.is_set():
            reached.set()
            assert written.wait(WAIT), "the writer did not finish"

    def run() -> None:
        try:
            assert reached.wait(WAIT), "the pass never reached the hook"
            writer()
        except BaseException as exc:
            errors.append(exc)
        finally:
            written.set()

    store.catalog.hook = hook
    thread = threading.Thread(target=run)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.reached = reached  # type: ignore[attr-defined]
    thread.start()
    return thread


def finish(thread: threading.Thread) -> None:
    thread.join(WAIT)
    assert not thread.is_alive()
    assert thread.reached.is_set(), "the race did not happen"  # type: ignore[attr-defined]
    if thread.errors:  # type: ignore[attr-defined]
        raise thread.errors[0]  # type: ignore[attr-defined]


@pytest.mark.parametrize("point", ["sweep", "delete"])
def test_a_put_of_existing_content_during_gc_keeps_it(store, point):
    popular = b"popular content" * 100
    h = put_old(store, popular)
    doomed = put_old(store, b"nobody wants this")
    # The writer re-puts the content the pass is about to delete (a dedup
    # put: it bumps the put time before verifying the bytes).
    thread = interleave(
        store,
        point,
        h if point == "delete" else None,
        lambda: store.put(io.BytesIO(popular), hash=h, size=len(popular)),
    )
    stats = store.gc(before=utcnow() - GRACE)
    finish(thread)
    assert read(store, h) == popular
    assert stats.deleted == 1 and not store.exists(doomed)


@pytest.mark.parametrize("point", ["sweep", "delete"])
def test_a_named_ref_made_during_gc_keeps_its_blob(store, point):
    h = put_old(store, b"pin me while you can")
    thread = interleave(
        store, point, h if point == "delete" else None, lambda: store.put_ref("r", h)
    )
    store.gc(before=utcnow() - GRACE)
    finish(thread)
    assert read(store, h) == b"pin me while you can"
    assert store.get_ref("r").hash == h


class Gate(io.RawIOBase):
    """A part body that stops halfway until released: an upload in progress."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = io.BytesIO(data)
        self._half = len(data) // 2
        self.halfway = threading.Event()
        self.release = threading.Event()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._data.tell() >= self._half and not self.release.is_set():
            self.halfway.set()
            assert self.release.wait(WAIT)
        room = len(buffer)
        if self._data.tell() < self._half:
            room = min(room, self._half - self._data.tell())
        data = self._data.read(room)
        buffer[: len(data)] = data
        return len(data)


def test_upload_parts_in_progress_survive_a_gc_pass(store):
    existing = b"e" * 2048  # already stored, unreferenced, two hours old
    fresh = b"f" * 1500  # new content, its bytes half written
    put_old(store, existing)
    doomed = put_old(store, b"garbage")
    upload = store.new_upload(HOUR)
    gates = [Gate(existing), Gate(fresh)]
    errors: list[BaseException] = []

    def put_part(n: int, data: bytes, offset: int) -> None:
        try:
            store.put_part(upload, n, gates[n], len(data), hash_of(data), offset)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=put_part, args=(0, existing, 0)),
        threading.Thread(target=put_part, args=(1, fresh, len(existing))),
    ]
    for t in threads:
        t.start()
    for gate in gates:
        assert gate.halfway.wait(WAIT)
    # Grace 0 and no orphan margin: only the roots protect the parts.
    stats = store.gc(before=utcnow(), orphan_margin=timedelta(0))
    for gate in gates:
        gate.release.set()
    for t in threads:
        t.join(WAIT)
    assert not errors, errors
    assert stats.deleted == 1 and not store.exists(doomed)
    _, whole = store.finish_upload(upload, [hash_of(existing), hash_of(fresh)])
    assert read(store, whole) == existing + fresh


@pytest.mark.parametrize("point", ["sweep", "delete"])
def test_s3_objects_written_during_gc_keep_their_blobs(store, point):
    objects = ObjectStore(store)
    objects.create_bucket("bkt", owner="alice")
    old = b"old bytes that an S3 client re-uploads" * 10
    h = put_old(store, old)
    doomed = put_old(store, b"no object holds these")
    source = objects.put_object("bkt", "source", io.BytesIO(b"copied" * 50))

    def write_objects() -> None:
        objects.put_object("bkt", "same-content", io.BytesIO(old), len(old))
        objects.put_object("bkt", "new-content", io.BytesIO(b"brand new"), 9)
        objects.copy_object(source, "bkt", "copy", None)

    # Make the copied object's blob old too; only its copy's touch saves it
    # once the source object is deleted below.
    store.catalog.touch_blob(source.hash, utcnow() - 2 * HOUR)
    thread = interleave(store, point, h if point == "delete" else None, write_objects)
    stats = store.gc(before=utcnow() - GRACE)
    finish(thread)
    objects.delete_object("bkt", "source")
    store.gc(before=utcnow() - GRACE)  # a second pass: still referenced
    for key, want in [
        ("same-content", old),
        ("new-content", b"brand new"),
        ("copy", b"copied" * 50),
    ]:
        _, reader = objects.open_object("bkt", key)
        with reader:
            assert reader.read() == want
    assert stats.deleted == 1 and not store.exists(doomed)


# -- a whole pass with no grace inside the window ---------------------------------
#
# With a grace of 0 a whole pass can run after a writer touched a blob and
# before it recorded its reference: the pass finds no reference and a put
# time before its cut-off, and deletes the blob. The writer must then not
# report success for a reference to nothing (Store.hold touches again after
# recording, and undoes the reference when the blob is gone).


def run_a_pass_first(store: Store, method: str) -> Callable[[], None]:
    """Make the catalog's *method* run a GC pass with no grace before it
    records anything; returns the function that restores it."""
    original = getattr(store.catalog, method)

    def after_a_pass(*args, **kwargs):
        store.gc(before=utcnow())
        return original(*args, **kwargs)

    setattr(store.catalog, method, after_a_pass)
    return lambda: setattr(store.catalog, method, original)


def test_a_ref_to_a_blob_collected_while_pinning_is_refused_not_dangling(store):
    from blobstore.errors import BlobNotFound
    from blobstore.errors import RefNotFound

    h = store.put(io.BytesIO(b"pinned just too late")).hash
    restore = run_a_pass_first(store, "put_ref")
    with pytest.raises(BlobNotFound):
        store.put_ref("late", h)
    restore()
    assert not store.exists(h)
    with pytest.raises(RefNotFound):
        store.get_ref("late")
    # Put again and pinned again, it stays.
    store.put(io.BytesIO(b"pinned just too late"))
    assert store.put_ref("late", h) is True
    store.gc(before=utcnow())
    assert read(store, h) == b"pinned just too late"


def test_an_s3_object_whose_content_was_collected_meanwhile_is_a_503(store):
    from blobstore.errors import ObjectNotFound
    from blobstore.errors import Unavailable

    objects = ObjectStore(store)
    objects.create_bucket("bkt", owner="alice")
    restore = run_a_pass_first(store, "put_object")
    with pytest.raises(Unavailable, match="send it again"):
        objects.put_object("bkt", "late", io.BytesIO(b"stored just too late"), 20)
    restore()
    with pytest.raises(ObjectNotFound):
        objects.get_object("bkt", "late")
    objects.put_object("bkt", "late", io.BytesIO(b"stored just too late"), 20)
    store.gc(before=utcnow())
    _, reader = objects.open_object("bkt", "late")
    with reader:
        assert reader.read() == b"stored just too late"


def test_an_s3_put_undone_after_a_pass_leaves_a_newer_put_at_its_key(store):
    from blobstore.errors import Unavailable

    objects = ObjectStore(store)
    objects.create_bucket("bkt", owner="alice")
    catalog = store.catalog
    restore = run_a_pass_first(store, "put_object")  # the put's blob collected
    newer = []

    def newer_put_first(delete):
        # Another client's put at the same key lands right before the
        # undo's delete: the undo must not take it away.
        def hooked(*args):
            if not newer:
                restore()
                newer.append(objects.put_object("bkt", "k", io.BytesIO(b"newer"), 5))
            return delete(*args)

        return hooked

    catalog.delete_object = newer_put_first(catalog.delete_object)
    catalog.delete_object_if = newer_put_first(catalog.delete_object_if)
    with pytest.raises(Unavailable, match="send it again"):
        objects.put_object("bkt", "k", io.BytesIO(b"older"), 5)
    assert newer, "the undo did not run"
    _, reader = objects.open_object("bkt", "k")
    with reader:
        assert reader.read() == b"newer"


class ReversedCatalog(SQLiteCatalog):
    """Lists blobs in descending hash order: a catalog that broke the
    contract GC's merge join relies on."""

    def iter_blobs(self, put_before=None):
        return reversed(list(super().iter_blobs(put_before)))


def test_a_catalog_out_of_hash_order_stops_the_pass_and_loses_nothing_live(
    tmp_path,
):
    catalog = ReversedCatalog(tmp_path / "catalog.db")
    backend = LocalBackend(tmp_path / "blobs", fsync=False)
    with Store(catalog, backend) as store:
        blobs = {put_old(store, b"blob %d" % i): b"blob %d" % i for i in range(8)}
        live = sorted(blobs)[::2]
        with pytest.raises(Corrupt, match="out of hash order"):
            store.gc(live, before=utcnow() - HOUR)
        # Every record judged was judged right (the merge had not passed
        # it); the second one, out of order, stopped the pass.
        assert all(read(store, h) == blobs[h] for h in live)
        assert len([h for h in blobs if store.catalog.get_blob(h)]) >= 7


class HoursLongStream(io.RawIOBase):
    """Content that takes an hour a read to arrive (on a clock it moves)."""

    def __init__(self, data: bytes, clock: list, on_read=lambda: None) -> None:
        self._data = io.BytesIO(data)
        self._clock = clock
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self._clock[0] += HOUR
        self._on_read()
        return self._data.readinto(buffer[:4])


def test_a_put_that_streamed_longer_than_the_grace_is_young_when_recorded(
    store, monkeypatch
):
    clock = [utcnow() - 10 * HOUR]
    monkeypatch.setattr("blobstore.store.utcnow", lambda: clock[0])
    data = b"twelve bytes"
    record = store.put(HoursLongStream(data, clock), size=len(data))
    assert store.stat(record.hash).put_time == clock[0]  # when it was recorded
    store.gc(before=clock[0] - GRACE)
    assert read(store, record.hash) == data


def test_a_dedup_put_verified_for_long_is_young_again_or_refused(store, monkeypatch):
    from blobstore.errors import Unavailable

    monkeypatch.setattr("blobstore.store._RETOUCH_AFTER", 0.0)
    data = b"twelve bytes"
    h = put_old(store, data)
    clock = [utcnow()]
    monkeypatch.setattr("blobstore.store.utcnow", lambda: clock[0])
    store.put(HoursLongStream(data, clock), hash=h, size=len(data))
    assert store.stat(h).put_time == clock[0]  # touched at the end too

    # A pass with no grace collects it while the content is being verified:
    # the put says so rather than report a blob that is gone.
    collected = []

    def pass_once() -> None:
        if not collected:
            collected.append(store.gc(before=clock[0] + HOUR).deleted)

    with pytest.raises(Unavailable, match="put it again"):
        store.put(HoursLongStream(data, clock, pass_once), hash=h, size=len(data))
    assert collected == [1] and not store.exists(h)
