"""The Catalog contract suite: every catalog passes the same tests.

One suite per concern of the contract (``BlobCatalogContract``,
``UploadCatalogContract``, ``RefCatalogContract``, ``ObjectCatalogContract``,
``S3UploadCatalogContract``, ``JobCatalogContract``, as in
:mod:`blobstore.catalog.base`); :class:`CatalogContract` is all of them plus
what crosses concerns. A catalog's test module subclasses it and provides a
``catalog`` fixture (a fresh, empty catalog per test)::

    class TestSQLiteCatalog(CatalogContract):
        @pytest.fixture
        def catalog(self, tmp_path):
            return SQLiteCatalog(tmp_path / "catalog.db")

The conditional updates are the Store's concurrency control, so each one is
tested on both sides: it returns True and changes the record when its
condition holds, and returns False and changes nothing when it does not.
Iterators are tested with ``batch_size`` lowered, so paging is exercised
without thousands of records.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from blobstore.catalog.base import Catalog
from blobstore.errors import Conflict
from blobstore.records import BlobRecord
from blobstore.records import BlobTotals
from blobstore.records import BucketRecord
from blobstore.records import MultipartIndex
from blobstore.records import ObjectRecord
from blobstore.records import PartInfo
from blobstore.records import RefRecord
from blobstore.records import S3PartRecord
from blobstore.records import S3UploadRecord
from blobstore.records import UploadRecord
from tests.helpers import hash_of

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SEC = timedelta(seconds=1)


def h(n: int | str) -> str:
    """A distinct, valid SHA-384 hex digest per *n*."""
    return hash_of(f"content {n}".encode())


def blob(n: int | str, t: datetime = T0, size: int = 10) -> BlobRecord:
    return BlobRecord(h(n), size, t, f"name-{n}")


def composite(n: int | str, parts: list[tuple[str, int]], t: datetime = T0):
    index = MultipartIndex.from_pairs(parts)
    return BlobRecord(h(n), index.size, t, None, index)


def part(n: int, complete: bool = False, size: int = 100) -> PartInfo:
    return PartInfo(h(f"part {n}"), size, n * size, complete)


def obj(bucket: str, key: str, n: int | str = 0, **kw) -> ObjectRecord:
    return ObjectRecord(bucket, key, 10, f"etag-{n}", T0, h(n), **kw)


def s3part(upload_id: str, number: int, n: int | str = 0) -> S3PartRecord:
    return S3PartRecord(upload_id, number, h(n), 5, f"md5-{n}", T0)


def utf8_sorted(keys) -> list[str]:
    return sorted(keys, key=lambda k: k.encode())


# Keys whose UTF-8 byte order differs from case-insensitive, locale and
# UTF-16 orders: "B" < "a"; U+E000 (EE 80 80) < U+1D11E (F0 9D 84 9E) although
# UTF-16 puts the surrogate pair first; U+D7FF is the last code point before
# the surrogates; U+10FFFF is the highest.
S3_KEYS = [
    "a",
    "B",
    "a/b",
    "a0",
    "ab",
    "é",
    "é/x",
    "éa",
    "ê",
    "\ud7ff",
    "\ud7ffz",
    "\ue000",
    "𝄞",
    "x\U0010ffff",
    "x\U0010ffffa",
    "y",
    "~",
]


class BlobCatalogContract:
    """The blobs concern (BlobCatalog). Subclasses supply
    ``catalog``."""

    def test_plain_blob_round_trips(self, catalog: Catalog):
        record = blob(1)
        assert catalog.insert_blob(record)
        got = catalog.get_blob(record.hash)
        assert got == record
        assert got.put_time.tzinfo is not None
        assert got.put_time.utcoffset() == timedelta(0)
        assert not got.is_composite

    def test_composite_blob_round_trips_its_index(self, catalog: Catalog):
        record = composite("c", [(h(1), 5), (h(2), 7), (h(1), 5)])
        assert catalog.insert_blob(record)
        got = catalog.get_blob(record.hash)
        assert got == record
        assert got.name is None
        assert got.index.hashes == (h(1), h(2), h(1))
        assert got.index.sizes == (5, 7, 5)
        assert got.size == 17

    def test_get_missing_blob_is_none(self, catalog: Catalog):
        assert catalog.get_blob(h("missing")) is None

    def test_times_are_kept_to_the_millisecond(self, catalog: Catalog):
        t = T0 + timedelta(microseconds=123_456)
        catalog.insert_blob(BlobRecord(h(1), 1, t, "n"))
        assert catalog.get_blob(h(1)).put_time == T0 + timedelta(milliseconds=123)

    def test_insert_existing_hash_returns_false_and_keeps_the_first(self, catalog):
        assert catalog.insert_blob(blob(1))
        later = BlobRecord(h(1), 10, T0 + SEC, "other-name")
        assert not catalog.insert_blob(later)
        assert catalog.get_blob(h(1)) == blob(1)

    def test_touch_bumps_put_time_but_never_back(self, catalog: Catalog):
        catalog.insert_blob(blob(1))
        assert catalog.touch_blob(h(1), T0 + 5 * SEC)
        assert catalog.get_blob(h(1)).put_time == T0 + 5 * SEC
        # An older "now" (a slow put that started earlier) still matches the
        # blob but does not move its put time backwards.
        assert catalog.touch_blob(h(1), T0 + SEC)
        assert catalog.get_blob(h(1)).put_time == T0 + 5 * SEC

    def test_touch_missing_blob_returns_false(self, catalog: Catalog):
        assert not catalog.touch_blob(h("missing"), T0)
        assert catalog.get_blob(h("missing")) is None

    def test_delete_blob_if_matching_name_and_old_enough(self, catalog: Catalog):
        catalog.insert_blob(blob(1))
        assert catalog.delete_blob_if(h(1), "name-1", T0)  # put time <= before
        assert catalog.get_blob(h(1)) is None
        assert not catalog.delete_blob_if(h(1), "name-1", T0)  # already gone

    def test_delete_blob_if_wrong_name_keeps_it(self, catalog: Catalog):
        catalog.insert_blob(blob(1))
        assert not catalog.delete_blob_if(h(1), "name-of-an-old-copy", T0 + SEC)
        assert not catalog.delete_blob_if(h(1), None, T0 + SEC)
        assert catalog.get_blob(h(1)) == blob(1)

    def test_delete_blob_if_put_after_before_keeps_it(self, catalog: Catalog):
        catalog.insert_blob(blob(1))
        catalog.touch_blob(h(1), T0 + 2 * SEC)  # a concurrent dedup put
        assert not catalog.delete_blob_if(h(1), "name-1", T0 + SEC)
        assert catalog.get_blob(h(1)) is not None

    def test_delete_blob_if_composite_matches_no_name(self, catalog: Catalog):
        record = composite("c", [(h(1), 5), (h(2), 5)])
        catalog.insert_blob(record)
        assert not catalog.delete_blob_if(record.hash, "some-name", T0)
        assert catalog.delete_blob_if(record.hash, None, T0)
        assert catalog.get_blob(record.hash) is None

    def test_iter_blobs_filters_by_put_time_inclusive(self, catalog: Catalog):
        for i in range(6):
            catalog.insert_blob(blob(i, T0 + i * SEC))
        got = {b.hash for b in catalog.iter_blobs(put_before=T0 + 2 * SEC)}
        assert got == {h(0), h(1), h(2)}
        assert {b.hash for b in catalog.iter_blobs()} == {h(i) for i in range(6)}

    @pytest.mark.parametrize("count", [0, 1, 3, 6, 7, 10])
    def test_iter_blobs_pages_past_the_batch_size(self, catalog: Catalog, count):
        catalog.batch_size = 3
        for i in range(count):
            catalog.insert_blob(blob(i, T0 + (i % 2) * SEC))
        records = list(catalog.iter_blobs())
        assert sorted(r.hash for r in records) == sorted(h(i) for i in range(count))
        assert len(records) == count  # no duplicates across pages
        assert all(r == catalog.get_blob(r.hash) for r in records)
        old = [r.hash for r in catalog.iter_blobs(put_before=T0)]
        assert sorted(old) == sorted(h(i) for i in range(0, count, 2))

    def test_iter_composites_yields_only_composites(self, catalog: Catalog):
        catalog.batch_size = 2
        for i in range(4):
            catalog.insert_blob(blob(i))
        made = [composite(f"c{i}", [(h(i), 10), (h(i + 1), 10)]) for i in range(5)]
        for record in made:
            catalog.insert_blob(record)
        got = list(catalog.iter_composites())
        assert sorted(got, key=lambda r: r.hash) == sorted(made, key=lambda r: r.hash)

    def test_blobs_and_composites_come_in_ascending_hash_order(self, catalog):
        # GC's sweep is a merge join with its sorted mark set: it relies on
        # this order (and stops with Corrupt if a catalog breaks it).
        catalog.batch_size = 3
        for i in range(10):
            catalog.insert_blob(blob(i, T0 + (i % 3) * SEC))
        for i in range(7):
            catalog.insert_blob(composite(f"c{i}", [(h(i), 10), (h(i + 1), 10)]))
        for listed in (
            [r.hash for r in catalog.iter_blobs()],
            [r.hash for r in catalog.iter_blobs(put_before=T0 + SEC)],
            [r.hash for r in catalog.iter_composites()],
        ):
            assert listed == sorted(listed) and len(listed) > 5

    def test_known_names(self, catalog: Catalog):
        for i in range(3):
            catalog.insert_blob(blob(i))
        catalog.insert_blob(composite("c", [(h(0), 10), (h(1), 10)]))
        assert catalog.known_names([]) == set()
        assert catalog.known_names(["name-0", "name-2", "stray"]) == {
            "name-0",
            "name-2",
        }
        # More names than one query takes at once.
        many = [f"stray-{i}" for i in range(2500)] + ["name-1"]
        assert catalog.known_names(many) == {"name-1"}

    def test_blob_totals(self, catalog: Catalog):
        assert catalog.blob_totals() == BlobTotals(0, 0, 0)
        catalog.insert_blob(blob(1, size=10))
        catalog.insert_blob(blob(2, size=32))
        catalog.insert_blob(composite("c", [(h(1), 10), (h(2), 32)]))
        # A composite's bytes are its parts': counted once, as blobs.
        assert catalog.blob_totals() == BlobTotals(2, 42, 1)


class UploadCatalogContract:
    """The native multipart uploads concern (UploadCatalog). Subclasses supply
    ``catalog``."""

    def test_new_upload_round_trips(self, catalog: Catalog):
        catalog.insert_upload(UploadRecord("up1", T0))
        assert catalog.get_upload("up1") == UploadRecord("up1", T0, (), None, None)

    def test_get_missing_upload_is_none(self, catalog: Catalog):
        assert catalog.get_upload("nope") is None

    def test_insert_upload_with_a_taken_id_is_a_conflict(self, catalog: Catalog):
        catalog.insert_upload(UploadRecord("up1", T0))
        with pytest.raises(Conflict):
            catalog.insert_upload(UploadRecord("up1", T0 + SEC))
        assert catalog.get_upload("up1").expires == T0

    def test_init_part_fills_a_slot_and_gaps_read_as_none(self, catalog: Catalog):
        catalog.insert_upload(UploadRecord("up", T0))
        assert catalog.init_part("up", 2, part(2))
        assert catalog.get_upload("up").parts == (None, None, part(2))
        assert catalog.init_part("up", 0, part(0))
        assert catalog.get_upload("up").parts == (part(0), None, part(2))

    def test_init_part_on_a_taken_slot_returns_false(self, catalog: Catalog):
        catalog.insert_upload(UploadRecord("up", T0))
        for n in range(3):
            assert catalog.init_part("up", n, part(n))
        # Every slot around the one asked for is a part document too (the
        # case where a null test on "parts.N" would wrongly match).
        other = PartInfo(h("other"), 1, 0, False)
        assert not catalog.init_part("up", 1, other)
        assert not catalog.init_part("up", 0, other)
        assert not catalog.init_part("up", 2, other)
        assert catalog.get_upload("up").parts == (part(0), part(1), part(2))

    def test_init_part_on_a_completed_part_returns_false(self, catalog: Catalog):
        catalog.insert_upload(UploadRecord("up", T0))
        catalog.init_part("up", 0, part(0))
        catalog.complete_part("up", 0, part(0, complete=True))
        assert not catalog.init_part("up", 0, part(0))
        assert catalog.get_upload("up").parts == (part(0, complete=True),)

    def test_init_part_on_a_finished_upload_returns_false(self, catalog: Catalog):
        catalog.insert_upload(UploadRecord("up", T0))
        assert catalog.set_upload_hash("up", h("whole"))
        assert not catalog.init_part("up", 0, part(0))
        assert catalog.get_upload("up").parts == ()

    def test_init_part_on_a_missing_upload_returns_false(self, catalog: Catalog):
        assert not catalog.init_part("nope", 0, part(0))
        assert catalog.get_upload("nope") is None

    def test_complete_part_replaces_the_slot(self, catalog: Catalog):
        catalog.insert_upload(UploadRecord("up", T0))
        catalog.init_part("up", 0, part(0))
        catalog.init_part("up", 1, part(1))
        assert catalog.complete_part("up", 1, part(1, complete=True))
        assert catalog.get_upload("up").parts == (part(0), part(1, complete=True))

    def test_complete_part_needs_the_upload_and_the_slot(self, catalog: Catalog):
        assert not catalog.complete_part("nope", 0, part(0, complete=True))
        catalog.insert_upload(UploadRecord("up", T0))
        catalog.init_part("up", 0, part(0))
        assert not catalog.complete_part("up", 3, part(3, complete=True))
        assert catalog.get_upload("up").parts == (part(0),)

    def test_set_upload_hash(self, catalog: Catalog):
        assert not catalog.set_upload_hash("nope", h("whole"))
        catalog.insert_upload(UploadRecord("up", T0))
        assert catalog.set_upload_hash("up", h("whole"))
        assert catalog.get_upload("up").hash == h("whole")

    def test_set_owner_on_incomplete_upload_returns_false(self, catalog: Catalog):
        catalog.insert_upload(UploadRecord("up", T0))
        assert not catalog.set_upload_owner("up", "alice", T0 + SEC)
        got = catalog.get_upload("up")
        assert (got.owner, got.expires) == (None, T0)

    def test_set_owner_claims_and_renews(self, catalog: Catalog):
        catalog.insert_upload(UploadRecord("up", T0))
        catalog.set_upload_hash("up", h("whole"))
        assert catalog.set_upload_owner("up", "alice", T0 + SEC)
        got = catalog.get_upload("up")
        assert (got.owner, got.expires) == ("alice", T0 + SEC)
        assert catalog.set_upload_owner("up", "alice", T0 + 9 * SEC)
        assert catalog.get_upload("up").expires == T0 + 9 * SEC

    def test_set_owner_owned_by_another_returns_false(self, catalog: Catalog):
        catalog.insert_upload(UploadRecord("up", T0))
        catalog.set_upload_hash("up", h("whole"))
        catalog.set_upload_owner("up", "alice", T0 + SEC)
        assert not catalog.set_upload_owner("up", "bob", T0 + 5 * SEC)
        got = catalog.get_upload("up")
        assert (got.owner, got.expires) == ("alice", T0 + SEC)

    def test_set_owner_on_missing_upload_returns_false(self, catalog: Catalog):
        assert not catalog.set_upload_owner("nope", "alice", T0)

    def test_delete_upload_only_unowned(self, catalog: Catalog):
        catalog.insert_upload(UploadRecord("owned", T0))
        catalog.set_upload_hash("owned", h("whole"))
        catalog.set_upload_owner("owned", "alice", T0)
        catalog.insert_upload(UploadRecord("free", T0))
        catalog.init_part("free", 0, part(0))
        assert not catalog.delete_upload("owned", only_unowned=True)
        assert catalog.get_upload("owned") is not None
        assert catalog.delete_upload("free", only_unowned=True)
        assert catalog.get_upload("free") is None
        assert catalog.delete_upload("owned", only_unowned=False)
        assert catalog.get_upload("owned") is None

    def test_delete_upload_takes_its_parts(self, catalog: Catalog):
        catalog.insert_upload(UploadRecord("up", T0))
        catalog.init_part("up", 0, part(0))
        catalog.init_part("up", 3, part(3))
        assert catalog.delete_upload("up", only_unowned=False)
        assert not catalog.delete_upload("up", only_unowned=False)
        catalog.insert_upload(UploadRecord("up", T0))  # the id reused
        assert catalog.get_upload("up").parts == ()

    def test_iter_uploads_filters_by_expiry_and_pages(self, catalog: Catalog):
        catalog.batch_size = 2
        for i in range(7):
            catalog.insert_upload(UploadRecord(f"up{i}", T0 + i * SEC))
            catalog.init_part(f"up{i}", 1, part(i))
        every = list(catalog.iter_uploads())
        assert sorted(u.id for u in every) == [f"up{i}" for i in range(7)]
        assert all(
            u.parts == (None, part(i))
            for i, u in enumerate(sorted(every, key=lambda u: u.id))
        )
        expired = {u.id for u in catalog.iter_uploads(expired_before=T0 + 3 * SEC)}
        assert expired == {"up0", "up1", "up2"}  # strictly before


class RefCatalogContract:
    """The named refs concern (RefCatalog). Subclasses supply
    ``catalog``."""

    def test_put_ref_creates_then_replaces(self, catalog: Catalog):
        assert catalog.put_ref("app/x", h(1), T0)
        assert catalog.get_ref("app/x") == RefRecord("app/x", h(1), T0)
        assert not catalog.put_ref("app/x", h(2), T0 + SEC)
        assert catalog.get_ref("app/x") == RefRecord("app/x", h(2), T0 + SEC)

    def test_get_and_delete_missing_ref(self, catalog: Catalog):
        assert catalog.get_ref("nope") is None
        assert not catalog.delete_ref("nope")
        catalog.put_ref("yes", h(1), T0)
        assert catalog.delete_ref("yes")
        assert catalog.get_ref("yes") is None

    def test_list_refs_prefix_after_limit_in_byte_order(self, catalog: Catalog):
        names = ["a", "a/1", "a/2", "a/é", "a/z", "a0", "b", "é", "\ue000", "𝄞"]
        for i, name in enumerate(names):
            catalog.put_ref(name, h(i), T0)

        def listed(**kw) -> list[str]:
            return [r.name for r in catalog.list_refs(**kw)]

        assert listed() == utf8_sorted(names)
        assert listed(prefix="a/") == ["a/1", "a/2", "a/z", "a/é"]
        assert listed(prefix="a/", after="a/2") == ["a/z", "a/é"]
        assert listed(prefix="a/", after="a") == ["a/1", "a/2", "a/z", "a/é"]
        assert listed(prefix="a/", after="b") == []
        assert listed(prefix="a/", limit=2) == ["a/1", "a/2"]
        assert listed(after="é") == ["\ue000", "𝄞"]
        assert listed(prefix="é") == ["é"]
        assert listed(prefix="zz") == []
        assert listed(limit=0) == []

    def test_iter_refs_pages(self, catalog: Catalog):
        catalog.batch_size = 3
        for i in range(8):
            catalog.put_ref(f"r{i}", h(i), T0)
        assert [r.name for r in catalog.iter_refs()] == [f"r{i}" for i in range(8)]


class ObjectCatalogContract:
    """The S3 buckets and objects concern (ObjectCatalog). Subclasses supply
    ``catalog``."""

    def test_buckets(self, catalog: Catalog):
        assert catalog.create_bucket(BucketRecord("b2", "bob", T0, "eu-west-1"))
        assert catalog.create_bucket(BucketRecord("b1", "alice", T0))
        assert catalog.create_bucket(BucketRecord("b3", "alice", T0 + SEC))
        assert not catalog.create_bucket(BucketRecord("b1", "bob", T0 + SEC))
        assert catalog.get_bucket("b1") == BucketRecord("b1", "alice", T0)
        assert catalog.get_bucket("b2").region == "eu-west-1"
        assert catalog.get_bucket("nope") is None
        assert [b.name for b in catalog.list_buckets()] == ["b1", "b2", "b3"]
        assert [b.name for b in catalog.list_buckets("alice")] == ["b1", "b3"]
        assert catalog.list_buckets("carol") == []

    def test_delete_bucket_that_holds_objects_is_a_conflict(self, catalog: Catalog):
        catalog.create_bucket(BucketRecord("b", "alice", T0))
        catalog.put_object(obj("b", "k"))
        with pytest.raises(Conflict):
            catalog.delete_bucket("b")
        assert catalog.get_bucket("b") is not None
        assert catalog.get_object("b", "k") is not None

    def test_object_round_trips(self, catalog: Catalog):
        record = obj(
            "b",
            "dir/ключ.txt",
            content_type="text/plain",
            headers={"Cache-Control": "no-cache", "Content-Disposition": "x"},
            metadata={"colour": "blue", "a.b": "dots", "$x": "dollar"},
        )
        catalog.put_object(record)
        assert catalog.get_object("b", "dir/ключ.txt") == record
        assert catalog.get_object("b", "dir/other") is None
        assert catalog.get_object("other", "dir/ключ.txt") is None

    def test_multipart_object_round_trips_its_index(self, catalog: Catalog):
        index = MultipartIndex((h(1), h(2)), (5, 6))
        # upload_id: completing the same upload again finds the object by it
        record = ObjectRecord("b", "k", 11, "etag-2", T0, None, index, upload_id="u1")
        catalog.put_object(record)
        got = catalog.get_object("b", "k")
        assert got == record
        assert got.blob_hashes() == [h(1), h(2)]
        assert [o.upload_id for o in catalog.list_objects("b")] == ["u1"]
        assert [o.upload_id for o in catalog.iter_objects()] == ["u1"]

    def test_put_object_replaces(self, catalog: Catalog):
        catalog.put_object(obj("b", "k", 1, metadata={"old": "1"}))
        catalog.put_object(obj("b", "k", 2))
        assert catalog.get_object("b", "k") == obj("b", "k", 2)
        assert [o.etag for o in catalog.list_objects("b")] == ["etag-2"]

    def test_delete_object(self, catalog: Catalog):
        catalog.put_object(obj("b", "k"))
        assert catalog.delete_object("b", "k")
        assert catalog.get_object("b", "k") is None
        assert not catalog.delete_object("b", "k")

    def test_delete_object_if_deletes_only_that_version(self, catalog: Catalog):
        first = obj("b", "k", 1, metadata={"v": "1"}, upload_id="u1")
        catalog.put_object(first)
        for newer in (
            obj("b", "k", 2),  # other content
            obj("b", "k", 1, metadata={"v": "2"}, upload_id="u1"),  # other meta
            obj("b", "k", 1, metadata={"v": "1"}),  # no upload
            ObjectRecord(
                "b", "k", 10, "etag-1", T0, None, MultipartIndex((h(1),), (10,))
            ),
        ):
            catalog.put_object(newer)
            assert not catalog.delete_object_if(first)
            assert catalog.get_object("b", "k") == newer
        assert catalog.delete_object_if(newer)
        assert catalog.get_object("b", "k") is None
        assert not catalog.delete_object_if(newer)
        catalog.put_object(first)
        assert catalog.delete_object_if(first)
        assert catalog.get_object("b", "k") is None

    def test_list_objects_in_utf8_byte_order(self, catalog: Catalog):
        for i, key in enumerate(reversed(S3_KEYS)):
            catalog.put_object(obj("b", key, i))
        catalog.put_object(obj("a", "a-other-bucket"))
        catalog.put_object(obj("c", "c-other-bucket"))
        assert [o.key for o in catalog.list_objects("b")] == utf8_sorted(S3_KEYS)
        assert [o.key for o in catalog.list_objects("none")] == []

    @pytest.mark.parametrize(
        ("prefix", "expected"),
        [
            ("a", ["a", "a/b", "a0", "ab"]),
            ("a/", ["a/b"]),
            ("é", ["é", "é/x", "éa"]),  # ends in the byte A9
            ("\ud7ff", ["\ud7ff", "\ud7ffz"]),  # next code point skips surrogates
            ("x\U0010ffff", ["x\U0010ffff", "x\U0010ffffa"]),  # ends in F4 8F BF BF
            ("\U0010ffff", []),
            ("𝄞", ["𝄞"]),
            ("zz", []),
        ],
    )
    def test_list_objects_by_prefix(self, catalog: Catalog, prefix, expected):
        for key in S3_KEYS:
            catalog.put_object(obj("b", key))
        assert [o.key for o in catalog.list_objects("b", prefix=prefix)] == expected

    def test_list_objects_start_after_and_limit(self, catalog: Catalog):
        for key in S3_KEYS:
            catalog.put_object(obj("b", key))
        ordered = utf8_sorted(S3_KEYS)

        def listed(**kw) -> list[str]:
            return [o.key for o in catalog.list_objects("b", **kw)]

        assert listed(start_after="é") == ordered[ordered.index("é") + 1 :]
        assert listed(start_after="é", limit=2) == ["é/x", "éa"]
        assert listed(start_after="éZ") == ordered[ordered.index("éa") :]
        assert listed(start_after="\U0010ffff") == []
        assert listed(prefix="é", start_after="é/x") == ["éa"]
        assert listed(prefix="é", start_after="a") == ["é", "é/x", "éa"]
        assert listed(prefix="é", start_after="é") == ["é/x", "éa"]
        assert listed(prefix="é", start_after="ê") == []
        assert listed(limit=3) == ordered[:3]
        assert listed(limit=0) == []
        # Paging with start_after visits every key once.
        seen: list[str] = []
        while page := listed(start_after=seen[-1] if seen else "", limit=4):
            seen += page
        assert seen == ordered

    def test_iter_objects_covers_every_bucket_and_pages(self, catalog: Catalog):
        catalog.batch_size = 3
        catalog.create_bucket(BucketRecord("b1", "alice", T0))
        expected = set()
        for bucket in ["b1", "b2", "no-bucket-record"]:
            for key in ["k1", "k2", "ké", "k𝄞"]:
                catalog.put_object(obj(bucket, key))
                expected.add((bucket, key))
        got = [(o.bucket, o.key) for o in catalog.iter_objects()]
        assert len(got) == len(expected)
        # Objects whose bucket record is gone still count: the GC must keep
        # what any object points at.
        assert set(got) == expected


class S3UploadCatalogContract:
    """The S3 multipart uploads concern (S3UploadCatalog). Subclasses supply
    ``catalog``."""

    def test_s3_upload_round_trips(self, catalog: Catalog):
        record = S3UploadRecord(
            "u1", "b", "k/é", T0, "alice", "text/plain", {"X-H": "1"}, {"m.k": "v"}
        )
        catalog.create_s3_upload(record)
        assert catalog.get_s3_upload("u1") == record
        assert catalog.get_s3_upload("nope") is None
        with pytest.raises(Conflict):
            catalog.create_s3_upload(S3UploadRecord("u1", "b", "other", T0))
        assert catalog.get_s3_upload("u1") == record

    def test_s3_parts_upsert_and_list(self, catalog: Catalog):
        catalog.create_s3_upload(S3UploadRecord("u", "b", "k", T0))
        for number in [3, 1, 10000, 2]:
            assert catalog.put_s3_part(s3part("u", number, number))
        assert catalog.put_s3_part(s3part("u", 2, "again"))  # re-upload replaces
        parts = catalog.list_s3_parts("u")
        assert [p.number for p in parts] == [1, 2, 3, 10000]
        assert parts[1] == s3part("u", 2, "again")
        assert [p.number for p in catalog.list_s3_parts("u", after=1)] == [2, 3, 10000]
        assert [p.number for p in catalog.list_s3_parts("u", limit=2)] == [1, 2]
        assert catalog.list_s3_parts("u", limit=0) == []
        assert catalog.list_s3_parts("other") == []

    def test_put_s3_part_on_missing_upload_returns_false(self, catalog: Catalog):
        assert not catalog.put_s3_part(s3part("nope", 1))
        assert catalog.list_s3_parts("nope") == []

    def test_list_s3_uploads_order_prefix_and_markers(self, catalog: Catalog):
        # Ids deliberately not in initiation order.
        uploads = [
            S3UploadRecord("z", "b", "k", T0),
            S3UploadRecord("a", "b", "k", T0 + SEC),
            S3UploadRecord("m", "b", "k", T0 + SEC),
            S3UploadRecord("q", "b", "é", T0),
            S3UploadRecord("c", "b", "j", T0 + 5 * SEC),
            S3UploadRecord("x", "other", "k", T0),
        ]
        for record in uploads:
            catalog.create_s3_upload(record)

        def listed(**kw) -> list[str]:
            return [u.id for u in catalog.list_s3_uploads("b", **kw)]

        assert listed() == ["c", "z", "a", "m", "q"]  # (key, initiated, id)
        assert listed(prefix="k") == ["z", "a", "m"]
        assert listed(prefix="é") == ["q"]
        assert listed(key_marker="j") == ["z", "a", "m", "q"]
        assert listed(key_marker="k", upload_id_marker="z") == ["a", "m", "q"]
        assert listed(key_marker="k", upload_id_marker="a") == ["m", "q"]
        assert listed(key_marker="k", upload_id_marker="m") == ["q"]
        assert listed(limit=2) == ["c", "z"]
        assert listed(limit=0) == []
        # Paging with both markers visits every upload once.
        seen: list[S3UploadRecord] = []
        while True:
            marker = seen[-1] if seen else None
            page = catalog.list_s3_uploads(
                "b",
                key_marker=marker.key if marker else "",
                upload_id_marker=marker.id if marker else "",
                limit=1,
            )
            if not page:
                break
            seen += page
        assert [u.id for u in seen] == ["c", "z", "a", "m", "q"]

    def test_list_s3_uploads_after_a_vanished_marker_skips_nothing(self, catalog):
        for record in [
            S3UploadRecord("z", "b", "k", T0),
            S3UploadRecord("a", "b", "k", T0 + SEC),
            S3UploadRecord("n", "b", "l", T0),
        ]:
            catalog.create_s3_upload(record)
        catalog.delete_s3_upload("z")
        got = [u.id for u in catalog.list_s3_uploads("b", "", "k", "z")]
        assert got == ["a", "n"]

    def test_complete_s3_upload(self, catalog: Catalog):
        catalog.create_s3_upload(S3UploadRecord("u", "b", "k", T0))
        catalog.put_s3_part(s3part("u", 1, 1))
        catalog.put_s3_part(s3part("u", 2, 2))
        index = MultipartIndex((h(1), h(2)), (5, 5))
        done = ObjectRecord("b", "k", 10, "etag-2", T0, None, index)
        assert catalog.complete_s3_upload("u", done)
        assert catalog.get_object("b", "k") == done
        assert catalog.get_s3_upload("u") is None
        assert catalog.list_s3_parts("u") == []
        # Completing again (a retry, or a racing second request) fails and
        # does not overwrite what the first one stored.
        assert not catalog.complete_s3_upload("u", obj("b", "k", "late"))
        assert catalog.get_object("b", "k") == done

    def test_complete_missing_s3_upload_stores_nothing(self, catalog: Catalog):
        assert not catalog.complete_s3_upload("nope", obj("b", "k"))
        assert catalog.get_object("b", "k") is None

    def test_delete_s3_upload(self, catalog: Catalog):
        catalog.create_s3_upload(S3UploadRecord("u", "b", "k", T0))
        catalog.put_s3_part(s3part("u", 1))
        assert catalog.delete_s3_upload("u")
        assert catalog.get_s3_upload("u") is None
        assert catalog.list_s3_parts("u") == []
        assert not catalog.delete_s3_upload("u")
        assert not catalog.put_s3_part(s3part("u", 2))

    def test_iter_s3_uploads_with_parts_filters_and_pages(self, catalog: Catalog):
        catalog.batch_size = 2
        for i in range(5):
            catalog.create_s3_upload(S3UploadRecord(f"u{i}", "b", "k", T0 + i * SEC))
            for number in range(1, i + 1):
                catalog.put_s3_part(s3part(f"u{i}", number))
        got = {
            u.id: [p.number for p in parts] for u, parts in catalog.iter_s3_uploads()
        }
        assert got == {f"u{i}": list(range(1, i + 1)) for i in range(5)}
        old = {u.id for u, _ in catalog.iter_s3_uploads(initiated_before=T0 + 2 * SEC)}
        assert old == {"u0", "u1"}  # strictly before


class JobCatalogContract:
    """The leases and job state concern (JobCatalog). Subclasses supply
    ``catalog``."""

    def test_lease_is_exclusive_until_it_expires(self, catalog: Catalog):
        ttl = timedelta(seconds=10)
        assert catalog.acquire_lease("gc", "a", ttl, T0)
        assert not catalog.acquire_lease("gc", "b", ttl, T0 + 9 * SEC)
        assert catalog.acquire_lease("gc", "b", ttl, T0 + 10 * SEC)  # expired
        assert not catalog.acquire_lease("gc", "a", ttl, T0 + 11 * SEC)
        assert catalog.acquire_lease("other", "a", ttl, T0 + 11 * SEC)

    def test_lease_renewal_by_its_holder_extends_it(self, catalog: Catalog):
        ttl = timedelta(seconds=10)
        assert catalog.acquire_lease("gc", "a", ttl, T0)
        assert catalog.acquire_lease("gc", "a", ttl, T0 + 8 * SEC)
        assert not catalog.acquire_lease("gc", "b", ttl, T0 + 12 * SEC)
        assert catalog.acquire_lease("gc", "b", ttl, T0 + 18 * SEC)

    def test_release_lease_only_by_its_holder(self, catalog: Catalog):
        ttl = timedelta(seconds=10)
        catalog.acquire_lease("gc", "a", ttl, T0)
        catalog.release_lease("gc", "b")
        assert not catalog.acquire_lease("gc", "b", ttl, T0 + SEC)
        catalog.release_lease("gc", "a")
        assert catalog.acquire_lease("gc", "b", ttl, T0 + SEC)
        catalog.release_lease("never", "a")  # releasing nothing is fine

    def test_state(self, catalog: Catalog):
        assert catalog.get_state("gc.last") is None
        catalog.put_state("gc.last", {"deleted": 3, "nested": {"a.b": [1, 2]}})
        assert catalog.get_state("gc.last") == {
            "deleted": 3,
            "nested": {"a.b": [1, 2]},
        }
        catalog.put_state("gc.last", {"finished": T0})  # replaces
        # Values that are not JSON come back as strings.
        assert catalog.get_state("gc.last") == {"finished": str(T0)}


class CatalogContract(
    BlobCatalogContract,
    UploadCatalogContract,
    RefCatalogContract,
    ObjectCatalogContract,
    S3UploadCatalogContract,
    JobCatalogContract,
):
    """Tests every whole catalog must pass: each concern's, and what crosses
    them. Subclasses supply ``catalog``."""

    def test_delete_bucket_takes_its_pending_uploads(self, catalog: Catalog):
        catalog.create_bucket(BucketRecord("b", "alice", T0))
        catalog.create_bucket(BucketRecord("other", "alice", T0))
        catalog.create_s3_upload(S3UploadRecord("u1", "b", "k", T0))
        catalog.create_s3_upload(S3UploadRecord("u2", "other", "k", T0))
        catalog.put_s3_part(s3part("u1", 1))
        catalog.put_s3_part(s3part("u2", 1))
        assert catalog.delete_bucket("b")
        assert catalog.get_bucket("b") is None
        assert catalog.get_s3_upload("u1") is None
        assert catalog.list_s3_parts("u1") == []
        assert catalog.get_s3_upload("u2") is not None
        assert len(catalog.list_s3_parts("u2")) == 1
        assert not catalog.delete_bucket("b")
        assert not catalog.delete_bucket("never")
