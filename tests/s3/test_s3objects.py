"""The S3 object layer as a library (:class:`blobstore.s3.objects.ObjectStore`):
listing over many keys, ordering, multipart rules, stale uploads, and how S3
objects interact with dedup and GC."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from blobstore import Store
from blobstore.backends.memory import MemoryBackend
from blobstore.catalog.base import Catalog
from blobstore.clock import utcnow
from blobstore.errors import BucketNotEmpty
from blobstore.errors import BucketNotFound
from blobstore.errors import Corrupt
from blobstore.errors import EntityTooLarge
from blobstore.errors import InvalidPart
from blobstore.errors import InvalidPartOrder
from blobstore.errors import ObjectNotFound
from blobstore.errors import PartTooSmall
from blobstore.errors import UploadNotFound
from blobstore.keys import prefix_upper_bound
from blobstore.records import ObjectRecord
from blobstore.s3.objects import ObjectMeta
from blobstore.s3.objects import ObjectStore
from blobstore.s3.rules import multipart_etag
from tests.factories import CATALOGS


@pytest.fixture(params=sorted(CATALOGS))
def catalog(request, tmp_path) -> Catalog:
    """Every catalog, counting its listing queries (to show that a page
    never scans)."""
    catalog = CATALOGS[request.param](tmp_path, request)
    listing = catalog.list_objects

    def counted(*args, **kwargs):
        catalog.list_calls += 1
        return listing(*args, **kwargs)

    catalog.list_calls = 0
    catalog.list_objects = counted
    return catalog


@pytest.fixture
def objects(catalog) -> ObjectStore:
    objects = ObjectStore(Store(catalog, MemoryBackend()), min_part_size=10)
    objects.create_bucket("bkt", owner="me")
    return objects


def put(objects: ObjectStore, key: str, data: bytes = b"x") -> ObjectRecord:
    return objects.put_object("bkt", key, io.BytesIO(data), len(data))


def record_only(catalog, key: str) -> None:
    """An object record without bytes (fast setup of many keys)."""
    catalog.put_object(ObjectRecord("bkt", key, 1, "0" * 32, utcnow(), hash="0" * 96))


def list_all(objects, **kwargs) -> list[str]:
    out, marker = [], ""
    while True:
        page = objects.list_objects("bkt", marker=marker, **kwargs)
        out += [r.key for r in page.items] + page.prefixes
        if not page.truncated:
            return out
        marker = page.last_prefix if page.ends_with_prefix else page.last_item.key


def test_keys_list_in_utf8_byte_order(objects):
    keys = ["z", "a", "é", "\ufffd", "𝄞", "A", "a/b", "a0", "\u00ff"]
    for key in keys:
        put(objects, key)
    assert list_all(objects, limit=2) == sorted(keys, key=lambda k: k.encode())


# SQLite only: mongomock takes minutes over so many keys (the catalog
# contract pages both catalogs' listings).
@pytest.mark.parametrize("catalog", ["sqlite"], indirect=True)
def test_a_page_skips_a_huge_common_prefix_without_scanning_it(objects, catalog):
    count = 100_000
    for i in range(count):
        record_only(catalog, f"big/{i:06d}")
    for key in ("a", "c/x", "c/y", "z"):
        record_only(catalog, key)
    catalog.list_calls = 0
    page = objects.list_objects("bkt", delimiter="/", limit=1000)
    assert [r.key for r in page.items] == ["a", "z"]
    assert page.prefixes == ["big/", "c/"]
    assert not page.truncated
    assert catalog.list_calls <= 3  # not 100 batches of 1000
    # Paging through the 100k keys themselves: one query per page.
    catalog.list_calls = 0
    middle = f"big/{count // 2:06d}"
    page = objects.list_objects("bkt", prefix="big/", marker=middle, limit=1000)
    assert page.items[0].key == f"big/{count // 2 + 1:06d}" and page.truncated
    assert catalog.list_calls == 1


def test_delimiter_paging_and_markers_inside_a_common_prefix(objects):
    for key in ("a/1", "a/2", "bkt", "c/1", "c/2/3", "d"):
        put(objects, key)
    assert list_all(objects, delimiter="/", limit=1) == ["a/", "bkt", "c/", "d"]
    # A marker inside "a/" means "a/" was already returned.
    page = objects.list_objects("bkt", delimiter="/", marker="a/1")
    assert [r.key for r in page.items] == ["bkt", "d"] and page.prefixes == ["c/"]
    page = objects.list_objects("bkt", prefix="c/", delimiter="/")
    assert [r.key for r in page.items] == ["c/1"] and page.prefixes == ["c/2/"]
    assert objects.list_objects("bkt", limit=0).count == 0


def test_prefix_upper_bound():
    assert prefix_upper_bound("a/") == "a0"
    assert prefix_upper_bound("a\U0010ffff") == "b"
    assert prefix_upper_bound("\ud7ff") == "\ue000"
    assert prefix_upper_bound("\U0010ffff") is None


def test_bucket_rules(objects):
    assert objects.create_bucket("bkt", owner="me") is False
    put(objects, "k")
    with pytest.raises(BucketNotEmpty):
        objects.delete_bucket("bkt")
    objects.delete_object("bkt", "k")
    objects.delete_bucket("bkt")
    with pytest.raises(BucketNotFound):
        objects.delete_bucket("bkt")
    with pytest.raises(BucketNotFound):
        put(objects, "k")


def test_a_bucket_deleted_during_a_put_leaves_no_object(objects, catalog):
    class DeletesBucket(io.BytesIO):
        def read(self, n=-1):
            data = super().read(n)
            if not data and catalog.get_bucket("bkt") is not None:
                catalog.delete_bucket("bkt")
            return data

    with pytest.raises(BucketNotFound):
        objects.put_object("bkt", "k", DeletesBucket(b"data"), 4)
    assert catalog.get_object("bkt", "k") is None


def test_missing_content_is_reported_as_corruption(objects):
    record = put(objects, "k", b"data")
    objects.store.backend.remove(objects.store.stat(record.hash).name)
    with pytest.raises(Corrupt):
        objects.open_object("bkt", "k")


def test_copies_share_blobs_and_keep_them_alive(objects):
    source = put(objects, "src", b"shared bytes")
    copy = objects.copy_object(source, "bkt", "dst", ObjectMeta("text/plain"))
    assert (copy.hash, copy.content_type) == (source.hash, "text/plain")
    objects.delete_object("bkt", "src")
    objects.store.gc(before=utcnow() + timedelta(seconds=1))
    _, reader = objects.open_object("bkt", "dst")
    assert reader.read() == b"shared bytes"
    objects.delete_object("bkt", "dst")
    objects.store.gc(before=utcnow() + timedelta(seconds=1))
    assert objects.store.stats().blobs == 0
    with pytest.raises(ObjectNotFound):
        objects.copy_object(source, "bkt", "again", None)  # its bytes are gone


def test_multipart_rules(objects):
    upload = objects.create_upload("bkt", "mp", "me")
    parts = [
        objects.put_part(upload, n, io.BytesIO(data), len(data))
        for n, data in ((1, b"0123456789"), (2, b"abcdefghij"), (3, b"end"), (4, b"+"))
    ]
    pairs = [(p.number, f'"{p.md5}"') for p in parts]
    with pytest.raises(InvalidPartOrder):
        objects.complete_upload("bkt", "mp", upload.id, [pairs[1], pairs[0]])
    with pytest.raises(InvalidPart):
        objects.complete_upload("bkt", "mp", upload.id, [(5, pairs[0][1])])
    with pytest.raises(PartTooSmall):  # part 3 is neither big enough nor last
        objects.complete_upload("bkt", "mp", upload.id, pairs)
    record = objects.complete_upload("bkt", "mp", upload.id, pairs[:3])
    assert record.etag == multipart_etag([p.md5 for p in parts[:3]])
    assert record.hash is None and record.index.sizes == (10, 10, 3)
    _, reader = objects.open_object("bkt", "mp")
    assert reader.read() == b"0123456789abcdefghijend"
    # Completing again returns the same object; other part lists do not.
    assert objects.complete_upload("bkt", "mp", upload.id, pairs[:3]) == record
    with pytest.raises(UploadNotFound):
        objects.complete_upload("bkt", "mp", upload.id, pairs[:2])


def test_completion_touches_the_parts(objects):
    upload = objects.create_upload("bkt", "mp", "me")
    part = objects.put_part(upload, 1, io.BytesIO(b"data"), 4)
    put_time = objects.store.stat(part.hash).put_time
    record = objects.complete_upload("bkt", "mp", upload.id, [(1, part.md5)])
    assert objects.store.stat(part.hash).put_time >= record.mtime >= put_time


def test_parts_of_unknown_length_are_capped(objects):
    upload = objects.create_upload("bkt", "mp", "me")
    with pytest.raises(EntityTooLarge):
        objects.put_part(upload, 1, io.BytesIO(b"x"), 6 * 1024**3)


def test_stale_uploads_expire_and_their_parts_are_collected(objects):
    upload = objects.create_upload("bkt", "old", "me")
    objects.put_part(upload, 1, io.BytesIO(b"orphaned part"), 13)
    keep = objects.create_upload("bkt", "young", "me")
    now = utcnow()
    assert objects.remove_stale_uploads(now + timedelta(days=6)) == 0
    objects.store.gc(before=now + timedelta(seconds=1))
    assert objects.store.stats().blobs == 1  # the part is protected by its upload
    assert (
        objects.remove_stale_uploads(upload.initiated + timedelta(days=7, seconds=1))
        == 2
    )
    with pytest.raises(UploadNotFound):
        objects.get_upload("bkt", "young", keep.id)
    objects.store.gc(before=now + timedelta(seconds=1))
    assert objects.store.stats().blobs == 0


def test_upload_ids_sort_by_start_time(objects):
    ids = [objects.create_upload("bkt", "same", "me").id for _ in range(20)]
    page = objects.list_uploads("bkt")
    assert [u.id for u in page.items] == sorted(ids)
    started = [u.initiated for u in page.items]
    assert started == sorted(started)
    # Paging by (key, upload id) neither skips nor repeats an upload.
    first = objects.list_uploads("bkt", limit=7)
    rest = objects.list_uploads(
        "bkt", key_marker="same", upload_id_marker=first.last_item.id
    )
    assert [u.id for u in first.items + rest.items] == sorted(ids)
