"""The MongoDB catalog: the Catalog contract (on mongomock, or a real server
when BLOBSTORE_TEST_MONGODB_URI is set), the documents it stores (the
reference's), its errors, and a Store running on it."""

from __future__ import annotations

import io
import os
import socket
import threading
import warnings
from datetime import timedelta

import pytest
from bson.binary import Binary

from blobstore.backends.memory import MemoryBackend
from blobstore.catalog.mongo import MongoCatalog
from blobstore.clock import utcnow
from blobstore.errors import BadParams
from blobstore.errors import BlobNotFound
from blobstore.errors import Corrupt
from blobstore.errors import Unavailable
from blobstore.records import BlobRecord
from blobstore.records import ObjectRecord
from blobstore.records import PartInfo
from blobstore.records import UploadRecord
from blobstore.registry import catalog_from_config
from blobstore.store import Store
from tests.catalog_contract import T0
from tests.catalog_contract import CatalogContract
from tests.catalog_contract import composite
from tests.catalog_contract import h
from tests.catalog_contract import obj
from tests.helpers import hash_of


@pytest.fixture
def catalog(mongo_client, mongo_database):
    return MongoCatalog(client=mongo_client, database=mongo_database, prefix="bs")


class TestMongoCatalog(CatalogContract):
    pass


def raw(catalog: MongoCatalog, kind: str):
    """The collection behind *catalog* holding *kind* documents."""
    return catalog._coll(kind)


# -- the documents are the reference's ---------------------------------------


def test_upload_document_is_id_expiry_and_an_empty_parts_array(catalog):
    catalog.insert_upload(UploadRecord("up", T0))
    doc = raw(catalog, "upload").find_one({"_id": "up"})
    assert set(doc) == {"_id", "expires", "parts"}
    assert doc["parts"] == []  # so that $set on parts.N pads with nulls
    catalog.init_part("up", 2, PartInfo(h(1), 7, 0, False))
    parts = raw(catalog, "upload").find_one({"_id": "up"})["parts"]
    assert parts[:2] == [None, None]
    assert parts[2] == {"hash": h(1), "size": 7, "offset": 0, "complete": False}


def test_finished_and_owned_upload_fields(catalog):
    catalog.insert_upload(UploadRecord("up", T0))
    catalog.set_upload_hash("up", h("whole"))
    catalog.set_upload_owner("up", "alice", T0)
    doc = raw(catalog, "upload").find_one({"_id": "up"})
    assert (doc["hash"], doc["owner"]) == (h("whole"), "alice")


def test_blobref_documents(catalog):
    catalog.insert_blob(BlobRecord(h(1), 42, T0, "backend-name"))
    record = composite("c", [(h(1), 40), (h(2), 2)])
    catalog.insert_blob(record)
    blobs = raw(catalog, "blobref")
    doc = blobs.find_one({"_id": h(1)})
    assert set(doc) == {"_id", "name", "puttime", "size"}
    assert (doc["name"], doc["size"]) == ("backend-name", 42)
    comp = blobs.find_one({"_id": record.hash})
    assert "name" not in comp
    # The index keeps the digests compactly, 48 raw bytes each.
    assert bytes(comp["index"]["hashes"]) == bytes.fromhex(h(1) + h(2))
    assert comp["index"]["sizes"] == [40, 2]


def test_collections_are_named_by_prefix_and_indexed(catalog, mongo_client):
    catalog.insert_blob(BlobRecord(h(1), 1, T0, "n"))
    names = set(mongo_client[catalog.database].list_collection_names())
    assert {"bs.blobref", "bs.upload", "bs.object"} <= names
    blob_indexes = {
        tuple(spec["key"])
        for spec in raw(catalog, "blobref").index_information().values()
    }
    assert (("puttime", 1),) in blob_indexes
    assert (("name", 1), ("_id", 1)) in blob_indexes
    object_indexes = raw(catalog, "object").index_information().values()
    assert any(
        tuple(spec["key"]) == (("bucket", 1), ("key", 1)) and spec.get("unique")
        for spec in object_indexes
    )


def test_two_prefixes_in_one_database_are_separate(mongo_client, mongo_database):
    one = MongoCatalog(client=mongo_client, database=mongo_database, prefix="one")
    two = MongoCatalog(client=mongo_client, database=mongo_database, prefix="two")
    one.insert_blob(BlobRecord(h(1), 1, T0, "n"))
    assert two.get_blob(h(1)) is None


# -- corrupt documents are reported, not misread -------------------------------


def test_index_with_a_torn_digest_is_corrupt(catalog):
    raw(catalog, "blobref").insert_one(
        {
            "_id": h("c"),
            "puttime": T0,
            "size": 3,
            "index": {"hashes": Binary(b"\x00" * 50), "sizes": [3]},
        }
    )
    with pytest.raises(Corrupt, match="multiple of 48"):
        catalog.get_blob(h("c"))


def test_index_with_sizes_and_hashes_of_different_lengths_is_corrupt(catalog):
    raw(catalog, "blobref").insert_one(
        {
            "_id": h("c"),
            "puttime": T0,
            "size": 3,
            "index": {"hashes": Binary(bytes.fromhex(h(1))), "sizes": [1, 2]},
        }
    )
    with pytest.raises(Corrupt, match="mismatch"):
        catalog.get_blob(h("c"))


def test_upload_whose_parts_are_not_an_array_is_corrupt(catalog):
    raw(catalog, "upload").insert_one({"_id": "up", "expires": T0, "parts": {"2": {}}})
    with pytest.raises(Corrupt, match="not an array"):
        catalog.get_upload("up")


def test_implausible_hash_in_an_index_is_bad_params(catalog):
    bad = BlobRecord(h("c"), 2, T0, None, composite("x", [("zz" * 48, 2)]).index)
    with pytest.raises(BadParams):
        catalog.insert_blob(bad)
    assert catalog.get_blob(h("c")) is None


def test_records_are_utc_aware_with_a_naive_client(mongo_database):
    import mongomock

    naive = MongoCatalog(client=mongomock.MongoClient(), database=mongo_database)
    naive.insert_blob(BlobRecord(h(1), 1, T0, "n"))
    assert naive.get_blob(h(1)).put_time == T0
    assert naive.get_blob(h(1)).put_time.tzinfo is not None


# -- configuration and unavailability -------------------------------------------


@pytest.fixture
def dead_uri():
    """A URI of a port that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        yield f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=200"


def test_from_config_rejects_unknown_settings():
    with pytest.raises(BadParams, match=r"unknown mongodb catalog setting.*colour"):
        MongoCatalog.from_config({"type": "mongodb", "colour": "blue"})
    with pytest.raises(BadParams, match="must be a string"):
        MongoCatalog.from_config({"type": "mongodb", "prefix": 3})


def test_malformed_uri_is_bad_params():
    with pytest.raises(BadParams, match="invalid MongoDB catalog uri"):
        MongoCatalog("http://localhost:27017")
    with pytest.raises(BadParams, match="must not be empty"):
        MongoCatalog(database="")


def test_unreachable_server_at_start_is_unavailable(dead_uri):
    config = {"type": "mongodb", "uri": dead_uri, "database": "d", "prefix": "p"}
    with pytest.raises(Unavailable, match=r"MongoDB catalog .*'d'.* unavailable"):
        catalog_from_config(config)


def test_unreachable_server_later_is_unavailable(dead_uri):
    catalog = MongoCatalog(dead_uri, create_indexes=False)
    try:
        with pytest.raises(Unavailable):
            catalog.get_blob(h(1))
        with pytest.raises(Unavailable):
            catalog.insert_blob(BlobRecord(h(1), 1, T0, "n"))
        with pytest.raises(Unavailable):
            next(catalog.iter_blobs())  # iterators too
        with pytest.raises(Unavailable):
            catalog.check()
    finally:
        catalog.close()


def test_a_forked_worker_gets_its_own_client(dead_uri):
    # gunicorn forks workers from a master that may have built the catalog;
    # a MongoClient must not be shared across fork.
    catalog = MongoCatalog(dead_uri, create_indexes=False)
    parent_client = catalog._client
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork in a process with threads (pymongo's
        # monitors); the child only checks which client it would use.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: report, then leave without running pytest's exit
        try:
            catalog._coll("blobref")
            os.write(
                write_end, b"new" if catalog._client is not parent_client else b"old"
            )
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        answer = os.read(read_end, 3)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    assert answer == b"new"
    assert catalog._client is parent_client  # the parent keeps its own
    catalog.close()


def test_check_passes_on_a_live_server(catalog):
    catalog.check()


# -- a Store on the MongoDB catalog -----------------------------------------------


@pytest.fixture
def store(catalog):
    return Store(catalog, MemoryBackend(), min_part_size=10)


def test_store_put_open_and_dedup(store):
    data = b"hello, mongo catalog"
    first = store.put(io.BytesIO(data), hash_of(data), len(data))
    again = store.put(io.BytesIO(data), hash_of(data), len(data))
    assert (first.created, again.created) == (True, False)
    with store.open(first.hash) as f:
        assert f.read() == data
    assert store.stats().blobs == 1


def test_store_multipart_upload_becomes_a_composite_blob(store):
    parts = [b"a" * 10, b"b" * 10, b"tail"]
    upload_id = store.new_upload(timedelta(hours=1))
    offset = 0
    for n, data in enumerate(parts):
        store.put_part(upload_id, n, io.BytesIO(data), len(data), hash_of(data), offset)
        offset += len(data)
    index, whole = store.finish_upload(upload_id, [hash_of(p) for p in parts])
    assert whole == hash_of(b"".join(parts))
    with store.open(whole) as f:
        f.seek(8)
        assert f.read(6) == b"aabbbb"
    store.set_owner(upload_id, "me", timedelta(minutes=10))
    store.remove_upload(upload_id)
    assert store.stat(whole).index == index


def test_store_gc_collects_unreferenced_blobs(store):
    keep = store.put(io.BytesIO(b"keep me")).hash
    drop = store.put(io.BytesIO(b"drop me")).hash
    store.put_ref("pinned", keep)
    store.gc([], before=utcnow() + timedelta(seconds=1))
    assert store.exists(keep)
    assert not store.exists(drop)
    with pytest.raises(BlobNotFound):
        store.open(drop)


def test_store_s3_object_keeps_its_blob_through_gc(store, catalog):
    kept = store.put(io.BytesIO(b"object bytes")).hash
    dropped = store.put(io.BytesIO(b"other bytes")).hash
    catalog.put_object(ObjectRecord("no-such-bucket", "key", 12, "etag", T0, kept))
    store.gc([], before=utcnow() + timedelta(seconds=1))
    assert store.exists(kept)
    assert not store.exists(dropped)


# -- behaviour only a real server shows ------------------------------------------


@pytest.mark.mongodb
def test_concurrent_init_part_on_one_slot_has_one_winner(real_mongo_client, catalog):
    catalog.insert_upload(UploadRecord("up", T0))
    for n in range(3):
        catalog.init_part("up", n, PartInfo(h(n), 1, n, False))
    workers = 16
    barrier = threading.Barrier(workers)
    wins: list[bool] = []

    def race(i: int) -> None:
        barrier.wait(timeout=30)
        wins.append(catalog.init_part("up", 3, PartInfo(h(f"w{i}"), 1, 3, False)))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1
    winner = catalog.get_upload("up").parts[3]
    assert winner.hash in {h(f"w{i}") for i in range(workers)}


@pytest.mark.mongodb
def test_concurrent_lease_has_one_holder(real_mongo_client, catalog):
    workers = 16
    barrier = threading.Barrier(workers)
    wins: list[str] = []

    def race(i: int) -> None:
        barrier.wait(timeout=30)
        if catalog.acquire_lease("gc", f"h{i}", timedelta(minutes=1), T0):
            wins.append(f"h{i}")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


@pytest.mark.mongodb
def test_prefix_listing_is_an_index_range_not_a_scan(real_mongo_client, catalog):
    for i in range(50):
        catalog.put_object(obj("b", f"k{i:03d}"))
    plan = (
        raw(catalog, "object")
        .find(catalog._objects_query("b", "k01", "k012"))
        .sort(catalog._OBJECT_ORDER)
        .limit(10)
        .explain()
    )
    text = str(plan["queryPlanner"]["winningPlan"])
    assert "IXSCAN" in text
    assert "COLLSCAN" not in text
    assert "'stage': 'SORT'" not in text  # the index gives the order
