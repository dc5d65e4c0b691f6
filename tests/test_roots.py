"""GC roots and expiries (blobstore.roots): what a pass keeps and expires."""

import io
import time
from datetime import timedelta

import pytest

from blobstore import Store
from blobstore.backends.memory import MemoryBackend
from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore.clock import utcnow
from blobstore.refsources import IterableRefSource
from blobstore.s3.gc import StaleS3Uploads
from blobstore.s3.objects import ObjectStore


@pytest.fixture
def store(tmp_path):
    with Store(SQLiteCatalog(str(tmp_path / "c.db")), MemoryBackend()) as s:
        yield s


def later():
    return utcnow() + timedelta(seconds=1)


def test_the_catalog_roots_are_read_uploads_first(store):
    # Uploads before what is made of them (composites, S3 objects): see the
    # module docstring of blobstore.roots.
    assert [p.describe() for p in store.gc_roots] == [
        "uploads",
        "s3 uploads",
        "refs",
        "s3 objects",
    ]


def test_an_added_root_keeps_its_blobs(store):
    kept = store.put(io.BytesIO(b"kept")).hash
    gone = store.put(io.BytesIO(b"gone")).hash
    store.add_gc_root(IterableRefSource([kept], name="app"))
    stats = store.gc(before=later())
    assert stats.deleted == 1
    assert store.exists(kept) and not store.exists(gone)


def test_s3_objects_are_roots_with_no_object_store_in_sight(store):
    """Turning the S3 façade off must not make its objects garbage."""
    objects = ObjectStore(store)
    objects.create_bucket("bucket", owner="me")
    h = objects.put_object("bucket", "k", io.BytesIO(b"s3 bytes")).blob_hashes()[0]
    fresh = Store(store.catalog, store.backend)  # what `blobstore gc` opens
    assert fresh.gc(before=later()).deleted == 0
    assert fresh.exists(h)


class CountingExpiry:
    kind = "widgets"

    def __init__(self):
        self.calls = []

    def count(self, now):
        self.calls.append("count")
        return 2

    def expire(self, now):
        self.calls.append("expire")
        return 3


def test_expiries_run_before_marking_and_dry_runs_only_count(store):
    expiry = CountingExpiry()
    store.add_gc_expiry(expiry)
    dry = store.gc(before=later(), dry_run=True).to_dict()
    assert dry["widgets_expired"] == 2 and dry["uploads_expired"] == 0
    assert store.gc(before=later()).to_dict()["widgets_expired"] == 3
    assert expiry.calls == ["count", "expire"]


def test_stale_s3_uploads_free_their_parts_in_the_same_pass(store):
    objects = ObjectStore(store, multipart_expiry=timedelta(seconds=1))
    objects.create_bucket("bucket", owner="me")
    upload = objects.create_upload("bucket", "k", owner="me")
    part = objects.put_part(upload, 1, io.BytesIO(b"part")).hash
    store.add_gc_expiry(StaleS3Uploads(objects))
    young = store.gc(before=later())
    assert young.to_dict()["s3_uploads_expired"] == 0
    assert store.exists(part)  # a part of an upload in progress is a root
    time.sleep(1.1)
    stale = store.gc(before=later())
    assert stale.to_dict()["s3_uploads_expired"] == 1
    assert not store.exists(part)  # expired, then collected in the same pass
