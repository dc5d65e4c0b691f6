"""The GridFS backend: the Backend contract, GridFS specifics, and the Store on it.

Every test runs twice: over mongomock (always) and over a real MongoDB when
``BLOBSTORE_TEST_MONGODB_URI`` is set (skipped otherwise, with the reason).
Each test gets a fresh mongomock server, or a fresh database on the real one
that is dropped afterwards.
"""

from __future__ import annotations

import dataclasses
import io
import os
import socket
import threading
import tomllib
import warnings
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import gridfs
import gridfs.errors
import pymongo
import pytest
from bson import ObjectId
from pymongo import _csot

from blobstore.backends.gridfs import DEFAULT_CHUNK_SIZE
from blobstore.backends.gridfs import GridFSBackend
from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore.config import load_settings
from blobstore.errors import BadParams
from blobstore.errors import BlobNotFound
from blobstore.errors import HashMismatch
from blobstore.errors import SizeMismatch
from blobstore.errors import Unavailable
from blobstore.hashing import VerifyingReader
from blobstore.registry import BACKENDS
from blobstore.registry import backend_from_config
from blobstore.registry import load
from blobstore.store import Store
from tests.backend_contract import BackendContract
from tests.backend_contract import names
from tests.backend_contract import read_all
from tests.helpers import DataSource
from tests.helpers import FailingReader
from tests.helpers import SyncReader
from tests.helpers import hash_of
from tests.helpers import mongomock_client

MONGODB_URI = os.environ.get("BLOBSTORE_TEST_MONGODB_URI")
PREFIX = "blobstore"


@pytest.fixture(autouse=True)
def _no_leaked_operation_timeout():
    # Guards against the trap described in tests.helpers.mongomock_client: a
    # poisoned
    # timeout context variable would make tests depend on their order.
    assert _csot.get_timeout() is None
    yield
    assert _csot.get_timeout() is None, "a gridfs call leaked a CSOT timeout"


@pytest.fixture(
    params=["mongomock", pytest.param("mongodb", marks=pytest.mark.mongodb)]
)
def gridfs_client(request, mongo_database):
    """A client on an empty database named by ``gridfs_client.test_db``.

    Unlike conftest's ``mongo_client`` (one or the other), this runs every
    test on mongomock *and*, when configured, on the real server.
    """
    if request.param == "mongomock":
        client = mongomock_client(tz_aware=True)
        client.test_db = mongo_database
        yield client
        return
    if not MONGODB_URI:
        pytest.skip("set BLOBSTORE_TEST_MONGODB_URI to run against a real MongoDB")
    client = pymongo.MongoClient(
        MONGODB_URI, tz_aware=True, serverSelectionTimeoutMS=5000
    )
    client.test_db = mongo_database
    try:
        yield client
    finally:
        client.drop_database(client.test_db)
        client.close()


def make_backend(client, **kwargs) -> GridFSBackend:
    kwargs.setdefault("prefix", PREFIX)
    return GridFSBackend(database=client.test_db, client=client, **kwargs)


@pytest.fixture
def backend(gridfs_client):
    b = make_backend(gridfs_client)
    yield b
    b.close()


def collection(client, suffix: str):
    return client[client.test_db][f"{PREFIX}.{suffix}"]


class TestGridFSBackend(BackendContract):
    # Chunk boundaries at the default chunk size, on top of the common sizes.
    sizes = (
        *BackendContract.sizes,
        DEFAULT_CHUNK_SIZE - 1,
        DEFAULT_CHUNK_SIZE,
        DEFAULT_CHUNK_SIZE + 1,
        2 * DEFAULT_CHUNK_SIZE,
    )


class TestGridFSBackendSmallChunks(BackendContract):
    """The contract again with tiny chunks, so seeks and reads cross many."""

    sizes = (0, 1, 1023, 1024, 1025, 10_000)

    @pytest.fixture
    def backend(self, gridfs_client):
        b = make_backend(gridfs_client, chunk_size=1024)
        yield b
        b.close()

    def test_put_streams_a_large_object(self, backend):
        pytest.skip("covered with the default chunk size (tiny chunks make it slow)")


# -- layout, indexes, config ---------------------------------------------------


def test_files_live_in_the_prefix_bucket(gridfs_client, backend):
    data = os.urandom(DEFAULT_CHUNK_SIZE + 10)
    backend.put("n1", io.BytesIO(data), len(data))
    files = list(collection(gridfs_client, "files").find())
    assert [(f["filename"], f["length"], f["chunkSize"]) for f in files] == [
        ("n1", len(data), DEFAULT_CHUNK_SIZE)
    ]
    chunks = collection(gridfs_client, "chunks")
    assert chunks.count_documents({"files_id": files[0]["_id"]}) == 2


def test_chunk_size_is_configurable(gridfs_client):
    backend = make_backend(gridfs_client, chunk_size=1024 * 1024)
    data = os.urandom(3 * 1024 * 1024 + 1)
    backend.put("big", io.BytesIO(data), len(data))
    doc = collection(gridfs_client, "files").find_one({"filename": "big"})
    assert doc["chunkSize"] == 1024 * 1024
    assert collection(gridfs_client, "chunks").count_documents({}) == 4
    assert read_all(backend, "big") == data


def test_indexes_are_created_at_start(gridfs_client, backend):
    def keys(suffix):
        info = collection(gridfs_client, suffix).index_information()
        return {tuple(spec["key"]): spec.get("unique", False) for spec in info.values()}

    # Lookups by filename use the GridFS files index (filename is its prefix).
    assert keys("files")[(("filename", 1), ("uploadDate", 1))] is False
    assert keys("chunks")[(("files_id", 1), ("n", 1))] is True


def test_starting_twice_on_the_same_bucket_is_fine(gridfs_client, backend):
    backend.put("kept", io.BytesIO(b"abc"), 3)
    again = make_backend(gridfs_client)
    assert read_all(again, "kept") == b"abc"


@pytest.mark.parametrize("chunk_size", [0, 1023, 16 * 1024 * 1024, "255k", True])
def test_invalid_chunk_size_is_a_bad_parameter(gridfs_client, chunk_size):
    with pytest.raises(BadParams, match="chunk_size"):
        make_backend(gridfs_client, chunk_size=chunk_size)


def test_registered_as_gridfs():
    assert load(BACKENDS, "gridfs") is GridFSBackend
    # The registry path builds from config alone; keys are checked first.
    with pytest.raises(BadParams, match=r"unknown gridfs backend setting.*bogus"):
        backend_from_config({"type": "gridfs", "bogus": 1})


def test_from_config_shares_a_client(gridfs_client):
    config = {
        "type": "gridfs",
        "uri": "mongodb://unused.invalid:1",  # the shared client wins
        "database": gridfs_client.test_db,
        "prefix": "cfg",
        "chunk_size": 4096,
    }
    backend = GridFSBackend.from_config(config, client=gridfs_client)
    backend.put("c1", io.BytesIO(b"x" * 5000), 5000)
    files = gridfs_client[gridfs_client.test_db]["cfg.files"]
    doc = files.find_one()
    assert (doc["filename"], doc["chunkSize"]) == ("c1", 4096)
    backend.close()
    # The client belongs to its owner: closing the backend leaves it usable.
    assert files.count_documents({}) == 1


def test_mongodb_only_example_config(gridfs_client):
    path = Path(__file__).parent.parent / "config" / "mongodb-only.toml"
    config = tomllib.loads(path.read_text())
    catalog, backend_table = config["catalog"], config["backend"]
    assert (catalog["type"], backend_table["type"]) == ("mongodb", "gridfs")
    shared = ("uri", "database", "prefix")
    assert {k: catalog[k] for k in shared} == {k: backend_table[k] for k in shared}
    # The service's loader accepts it as it is.
    settings = load_settings(path, env={})
    assert settings.backend == backend_table
    assert settings.catalog == catalog
    # Built with the catalog's client shared.
    table = {**backend_table, "database": gridfs_client.test_db}
    backend = GridFSBackend.from_config(table, client=gridfs_client)
    assert backend.chunk_size == DEFAULT_CHUNK_SIZE
    backend.put("e1", io.BytesIO(b"abc"), 3)
    assert read_all(backend, "e1") == b"abc"


@pytest.mark.parametrize("uri", ["http://x", "mongodb://localhost:99999", 27017])
def test_invalid_uri_is_a_bad_parameter(uri):
    with pytest.raises(BadParams, match="invalid gridfs uri"):
        GridFSBackend(uri=uri)


def test_unreachable_mongodb_is_unavailable():
    port = _closed_port()
    with pytest.raises(Unavailable, match="cannot create the indexes"):
        GridFSBackend(
            uri=f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=200"
            "&connectTimeoutMS=200"
        )


def test_a_forked_worker_gets_its_own_client():
    # gunicorn forks workers from a master that may have built the backend;
    # a MongoClient must not be used across fork. No server is needed to see
    # which client the child would use.
    backend = GridFSBackend(
        uri=f"mongodb://127.0.0.1:{_closed_port()}/?serverSelectionTimeoutMS=200",
        create_indexes=False,
    )
    parent_client = backend._client
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork in a process with threads (pymongo's
        # monitors); the child only checks which client it would use.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: report, then leave without running pytest's exit
        try:
            backend._after_fork()
            fresh = backend._client is not parent_client
            bound = backend._files.database.client is backend._client
            os.write(write_end, b"new" if fresh and bound else b"old")
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        answer = os.read(read_end, 3)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    assert answer == b"new"
    backend._after_fork()
    assert backend._client is parent_client  # the parent keeps its own
    backend.close()


def test_a_shared_client_is_never_replaced(gridfs_client):
    backend = make_backend(gridfs_client)
    backend._pid = -1  # as if forked
    backend.put("s", io.BytesIO(b"x"), 1)
    assert backend._client is gridfs_client


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- put -------------------------------------------------------------------------


def _chunk_count(client) -> int:
    return collection(client, "chunks").count_documents({})


def test_failed_put_leaves_no_chunks(gridfs_client, backend):
    data = os.urandom(50_000)
    with pytest.raises(ConnectionResetError):
        backend.put("broken", FailingReader(data), 100_000)
    bad = VerifyingReader(io.BytesIO(data), len(data), hash_of(b"other"))
    with pytest.raises(HashMismatch):
        backend.put("badhash", bad, len(data))
    with pytest.raises(SizeMismatch):
        backend.put("short", VerifyingReader(io.BytesIO(data), len(data) + 1), None)
    assert names(backend) == set()
    assert _chunk_count(gridfs_client) == 0


@pytest.mark.slow
def test_failed_put_after_chunks_were_inserted_deletes_them(gridfs_client, backend):
    # The driver batches chunk inserts (up to 48 MiB), so only a long stream
    # has chunks in MongoDB when it fails: the abort must remove those.
    size = 64 * 1024 * 1024
    seen = []

    class FailsAtTheEnd(DataSource):
        def readinto(self, buffer):
            n = super().readinto(buffer)
            if n == 0:
                seen.append(_chunk_count(gridfs_client))
                raise ConnectionResetError("client went away")
            return n

    with pytest.raises(ConnectionResetError):
        backend.put("huge", FailsAtTheEnd(size), size)
    assert seen and seen[0] > 0, "no chunk reached MongoDB before the failure"
    assert names(backend) == set()
    assert _chunk_count(gridfs_client) == 0


def test_put_reads_streams_without_readinto(gridfs_client):
    class Dribble:
        """Returns at most 1000 bytes per read, like a slow socket."""

        def __init__(self, data):
            self._f = io.BytesIO(data)

        def read(self, n=-1):
            return self._f.read(min(n, 1000) if n >= 0 else 1000)

    backend = make_backend(gridfs_client, chunk_size=4096)
    data = os.urandom(4096 * 3 + 17)
    backend.put("dribble", Dribble(data), None)
    assert read_all(backend, "dribble") == data
    # Whole chunks were handed to GridFS despite the short reads.
    lengths = [
        len(c["data"]) for c in collection(gridfs_client, "chunks").find().sort("n", 1)
    ]
    assert lengths == [4096, 4096, 4096, 17]


# -- open and remove ---------------------------------------------------------


def test_removal_before_reading_surfaces_as_not_found(backend):
    data = os.urandom(10_000)
    backend.put("r1", io.BytesIO(data), len(data))
    f, _ = backend.open("r1")
    backend.remove("r1")
    with f, pytest.raises(BlobNotFound, match="removed while being read"):
        f.read()


def test_removal_while_reading_surfaces_as_not_found(backend):
    backend = make_backend_like(backend, chunk_size=1024)
    data = os.urandom(20 * 1024)
    backend.put("r2", io.BytesIO(data), len(data))
    f, _ = backend.open("r2")
    with f:
        assert f.read(1500) == data[:1500]
        backend.remove("r2")
        # The next chunk the reader needs is gone (a seek makes it ask the
        # server again instead of a cursor batch it may already hold).
        f.seek(10 * 1024)
        with pytest.raises(BlobNotFound, match="r2"):
            f.read(100)
        with pytest.raises(BlobNotFound):
            f.readinto(bytearray(100))


def make_backend_like(backend: GridFSBackend, **kwargs) -> GridFSBackend:
    return GridFSBackend(
        database=backend._db.name,
        prefix=backend.prefix,
        client=backend._client,
        **kwargs,
    )


def test_reader_follows_io_rules(backend):
    backend.put("io", io.BytesIO(b"0123456789"), 10)
    f, _ = backend.open("io")
    with pytest.raises(ValueError, match="negative"):
        f.seek(-11, io.SEEK_END)
    with pytest.raises(ValueError, match="whence"):
        f.seek(0, 7)
    assert f.seek(-3, io.SEEK_END) == 7
    buf = bytearray(5)
    assert f.readinto(buf) == 3
    assert bytes(buf[:3]) == b"789"
    f.seek(0)
    assert f.read(None) == b"0123456789"
    f.close()
    f.close()
    with pytest.raises(ValueError, match="closed"):
        f.read()
    with pytest.raises(ValueError, match="closed"):
        f.seek(0)


def test_remove_deletes_every_file_of_the_name(gridfs_client, backend):
    # GridFS allows revisions of one filename; a name is one object to us.
    bucket = gridfs.GridFSBucket(gridfs_client[gridfs_client.test_db], PREFIX)
    for data in (b"first" * 1000, b"second" * 1000):
        with bucket.open_upload_stream("dup", chunk_size_bytes=1024) as grid_in:
            grid_in.write(data)
    backend.put("other", io.BytesIO(b"stays"), 5)
    assert collection(gridfs_client, "files").count_documents({}) == 3
    backend.remove("dup")
    with pytest.raises(BlobNotFound):
        backend.open("dup")
    assert names(backend) == {"other"}
    assert _chunk_count(gridfs_client) == 1  # only "other"'s


def test_remove_of_a_file_without_chunks_left(gridfs_client, backend):
    # What an interrupted remove leaves (chunks go first): still listed, so
    # the GC's orphan sweep retries it; reading it says not found.
    backend.put("half", io.BytesIO(b"x" * 5000), 5000)
    collection(gridfs_client, "chunks").delete_many({})
    assert names(backend) == {"half"}
    f, _ = backend.open("half")
    with f, pytest.raises(BlobNotFound):
        f.read()
    backend.remove("half")
    assert names(backend) == set()


# -- list ------------------------------------------------------------------------


def test_list_reports_upload_dates_in_utc(backend):
    before = datetime.now(UTC) - timedelta(seconds=1)
    backend.put("t1", io.BytesIO(b"abc"), 3)
    after = datetime.now(UTC) + timedelta(seconds=1)
    [info] = backend.list()
    assert info.mtime.utcoffset() == timedelta(0)
    assert before <= info.mtime <= after


def test_list_with_a_shared_client_that_is_not_tz_aware():
    client = mongomock_client(tz_aware=False)
    backend = GridFSBackend(database="naive", client=client)
    backend.put("t2", io.BytesIO(b"abc"), 3)
    [info] = backend.list()
    assert info.mtime.tzinfo is not None
    assert abs(datetime.now(UTC) - info.mtime) < timedelta(minutes=1)


def test_list_ignores_files_it_could_not_have_written(gridfs_client, backend):
    bucket = gridfs.GridFSBucket(gridfs_client[gridfs_client.test_db], PREFIX)
    bucket.upload_from_stream("../not/ours", io.BytesIO(b"x"))
    backend.put("ours", io.BytesIO(b"y"), 1)
    assert names(backend) == {"ours"}


# -- health, stats, connection failures --------------------------------------


def test_stats(backend):
    backend.put("s1", io.BytesIO(b"abc"), 3)
    stats = backend.stats()
    assert stats["bucket"] == PREFIX
    assert stats["chunk_size"] == DEFAULT_CHUNK_SIZE
    assert stats["files"] == 1


@pytest.mark.mongodb
def test_every_operation_maps_a_lost_connection_to_unavailable(mongo_database):
    if not MONGODB_URI:
        pytest.skip("set BLOBSTORE_TEST_MONGODB_URI to run against a real MongoDB")
    client = pymongo.MongoClient(MONGODB_URI, serverSelectionTimeoutMS=5000)
    db = mongo_database
    try:
        backend = GridFSBackend(database=db, client=client)
        backend.put("u1", io.BytesIO(b"abc"), 3)
        f, _ = backend.open("u1")
    finally:
        client.drop_database(db)
        client.close()
    # A closed client is the most reliable "MongoDB went away" to produce.
    with pytest.raises(Unavailable):
        backend.put("u2", io.BytesIO(b"abc"), 3)
    with pytest.raises(Unavailable):
        backend.open("u1")
    with pytest.raises(Unavailable):
        f.read()
    with pytest.raises(Unavailable):
        backend.remove("u1")
    with pytest.raises(Unavailable):
        list(backend.list())
    with pytest.raises(Unavailable):
        backend.check()
    with pytest.raises(Unavailable):
        backend.stats()


def test_first_bucket_call_in_a_fresh_thread_works(gridfs_client, backend):
    # A new thread starts with fresh context variables, so nothing an earlier
    # call left behind can make this pass: it proves the fixture's client is
    # usable from the first call, including the driver's CSOT-wrapped
    # bucket methods.
    results = []

    def run():
        try:
            bucket = gridfs.GridFSBucket(gridfs_client[gridfs_client.test_db], PREFIX)
            with pytest.raises(gridfs.errors.NoFile):
                bucket.delete(ObjectId())
            backend.put("fresh", io.BytesIO(b"abc"), 3)
            results.append(read_all(backend, "fresh"))
        except BaseException as exc:  # reported in the main thread
            results.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert results == [b"abc"]


# -- the Store over GridFS -------------------------------------------------------


@pytest.fixture
def store(tmp_path, backend):
    s = Store(SQLiteCatalog(tmp_path / "catalog.db"), backend)
    yield s
    s.close()


def test_concurrent_puts_of_the_same_content_leave_one_file(gridfs_client, store):
    # The reference's Mongo-only TestPutConcurrent: the puts all start reading
    # together, every one writes its own GridFS file, one wins the catalog
    # record and the losers remove their copies.
    data = os.urandom(300_000)
    digest = hash_of(data)
    barrier = threading.Barrier(3)
    results, errors = [], []

    def put():
        try:
            r = store.put(SyncReader(data, barrier), digest, len(data))
            results.append(r)
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 3
    assert sum(r.created for r in results) == 1
    with store.open(digest) as blob:
        assert blob.read() == data
    files = list(collection(gridfs_client, "files").find())
    assert len(files) == 1
    assert files[0]["filename"] == store.stat(digest).name
    chunks = collection(gridfs_client, "chunks")
    assert chunks.count_documents({}) == chunks.count_documents(
        {"files_id": files[0]["_id"]}
    )


def test_store_put_open_and_gc(gridfs_client, store):
    keep = store.put(io.BytesIO(b"keep me" * 1000))
    drop = store.put(io.BytesIO(b"drop me" * 1000))
    with store.open(keep.hash) as blob:
        blob.seek(-7, io.SEEK_END)
        assert blob.read() == b"keep me"
    stats = store.gc([keep.hash], before=datetime.now(UTC) + timedelta(seconds=1))
    assert stats.deleted == 1
    with pytest.raises(BlobNotFound):
        store.open(drop.hash)
    assert names(store.backend) == {store.stat(keep.hash).name}
    assert _chunk_count(gridfs_client) == 1


def test_store_put_with_wrong_hash_stores_nothing(gridfs_client, store):
    data = os.urandom(400_000)
    with pytest.raises(HashMismatch):
        store.put(io.BytesIO(data), hash_of(b"something else"), len(data))
    assert not store.exists(hash_of(data))
    assert collection(gridfs_client, "files").count_documents({}) == 0
    assert _chunk_count(gridfs_client) == 0


def test_mongodb_only_config_builds_one_store_sharing_one_connection(monkeypatch):
    # build_store with the example config: the GridFS backend inherits the
    # catalog's uri/database/prefix and uses the catalog's own client.
    import blobstore.catalog.mongo as mongo_module
    from blobstore.config import build_store
    from tests.helpers import mongomock_client

    made = []

    def fake_client(*args, **kwargs):
        made.append(mongomock_client())
        return made[-1]

    monkeypatch.setattr(mongo_module.pymongo, "MongoClient", fake_client)
    path = Path(__file__).parent.parent / "config" / "mongodb-only.toml"
    settings = load_settings(path, env={})
    bare = dict(settings.backend)
    for key in ("uri", "database", "prefix"):
        bare.pop(key)
    settings = dataclasses.replace(settings, backend=bare)
    store = build_store(settings)
    assert len(made) == 1  # one connection pool for catalog and bytes
    assert store.backend.database == store.catalog.database
    assert store.backend.prefix == store.catalog.prefix
    result = store.put(io.BytesIO(b"mongodb only"))
    assert store.open(result.hash).read() == b"mongodb only"
    files = made[0][store.catalog.database][f"{store.catalog.prefix}.files"]
    assert files.count_documents({}) == 1
