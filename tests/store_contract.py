"""The Store contract suite: the reference's shared tests, ported.

charmstore's ``blobStoreSuite`` (anchors.md §1.10) ran every test against
each backend; here ``StoreContract`` runs against every catalog × backend in
``tests/factories.py`` (see ``tests/test_store.py``). Changes from the
reference, on purpose:

* Seeks follow Python ``io`` (``SEEK_END`` takes a negative offset; a
  negative position is an error, not clamped to 0), and a read fills its
  buffer across part boundaries instead of stopping at one.
* Multipart validation failures are ``BadParams`` (HTTP 400), a different
  hash for an already uploaded part is a ``PartConflict`` (409).
* Races the reference left to timing (FinishUpload vs RemoveUpload,
  concurrent undersized parts) are made deterministic with hooks.
"""

from __future__ import annotations

import io
import threading
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from blobstore import Store
from blobstore.clock import utcnow
from blobstore.errors import BadParams
from blobstore.errors import BlobNotFound
from blobstore.errors import Conflict
from blobstore.errors import Corrupt
from blobstore.errors import HashMismatch
from blobstore.errors import PartConflict
from blobstore.errors import SizeMismatch
from blobstore.errors import UploadComplete
from blobstore.errors import UploadInUse
from blobstore.errors import UploadNotFound
from blobstore.hashing import EMPTY_HASH
from blobstore.records import MultipartIndex
from blobstore.records import PartInfo
from tests.helpers import FailingReader
from tests.helpers import NoSeekReader
from tests.helpers import SyncReader
from tests.helpers import hash_of

HOUR = timedelta(hours=1)


def put_bytes(store: Store, data: bytes, **kw):
    return store.put(io.BytesIO(data), hash_of(data), len(data), **kw)


def read_blob(store: Store, h: str) -> bytes:
    with store.open(h) as f:
        data = f.read()
        assert len(data) == f.size
    return data


def backend_names(store: Store) -> set[str]:
    return {o.name for o in store.backend.list()}


def assert_not_found(store: Store, h: str) -> None:
    with pytest.raises(BlobNotFound):
        store.open(h)


def put_part(store, upload, n, data, offset=None):
    return store.put_part(upload, n, io.BytesIO(data), len(data), hash_of(data), offset)


def put_multipart(store, *parts: bytes, remove=True):
    """NewUpload, PutPart each, FinishUpload, SetOwner("test"), RemoveUpload."""
    upload = store.new_upload(HOUR)
    offset = 0
    for n, data in enumerate(parts):
        put_part(store, upload, n, data, offset)
        offset += len(data)
    index, whole = store.finish_upload(upload, [hash_of(p) for p in parts])
    store.set_owner(upload, "test", HOUR)
    if remove:
        store.remove_upload(upload)
    return upload, index, whole


class StoreContract:
    """Subclasses provide ``store`` (a Store with min_part_size=10)."""

    # -- put, open, gc ---------------------------------------------------------

    def test_put(self, store):
        r = put_bytes(store, b"some data")
        assert r.created and r.size == 9 and r.hash == hash_of(b"some data")
        assert read_blob(store, r.hash) == b"some data"
        again = put_bytes(store, b"some data")
        assert not again.created
        assert len(backend_names(store)) == 1

    def test_put_unknown_hash_computes_it(self, store):
        r = store.put(NoSeekReader(b"anonymous"))
        assert r.hash == hash_of(b"anonymous") and r.size == 9 and r.created
        again = store.put(io.BytesIO(b"anonymous"))
        assert not again.created
        assert len(backend_names(store)) == 1  # the duplicate copy was removed

    def test_put_computes_md5_on_request(self, store):
        import hashlib

        r = put_bytes(store, b"md5 me", md5=True)
        assert r.md5 == hashlib.md5(b"md5 me").hexdigest()
        assert put_bytes(store, b"md5 me", md5=True).md5 == r.md5

    def test_put_empty_blob(self, store):
        r = put_bytes(store, b"")
        assert r.hash == EMPTY_HASH
        assert read_blob(store, EMPTY_HASH) == b""

    def test_gc(self, store):
        hashes = [put_bytes(store, bytes(range(i))).hash for i in range(10)]
        stats = store.gc([hashes[2], hashes[5]], utcnow())
        assert (stats.count, stats.max_size, stats.mean_size) == (2, 5, 3)
        assert stats.deleted == 8
        for i, h in enumerate(hashes):
            if i in (2, 5):
                assert read_blob(store, h) == bytes(range(i))
            else:
                assert_not_found(store, h)
        assert len(backend_names(store)) == 2

    def test_gc_spares_blobs_put_after_the_cutoff(self, store):
        old = put_bytes(store, b"old", now=utcnow() - HOUR).hash
        new = put_bytes(store, b"new").hash
        stats = store.gc([], utcnow() - timedelta(minutes=30))
        assert stats.deleted == 1
        assert_not_found(store, old)
        assert read_blob(store, new) == b"new"

    def test_put_invalid_hash(self, store):
        with pytest.raises(HashMismatch, match="hash mismatch"):
            store.put(io.BytesIO(b"data"), hash_of(b"other"), 4)
        assert backend_names(store) == set()
        assert store.stats().blobs == 0

    def test_put_invalid_hash_unseekable(self, store):
        with pytest.raises(HashMismatch):
            store.put(NoSeekReader(b"data"), hash_of(b"other"), 4)
        assert backend_names(store) == set()

    def test_large_put_errors_store_nothing(self, store):
        # Big puts read ahead in a second thread: errors must still abort.
        data = b"z" * (3 * 1024 * 1024)
        with pytest.raises(HashMismatch):
            store.put(io.BytesIO(data), hash_of(b"other"), len(data))
        with pytest.raises(SizeMismatch):
            store.put(io.BytesIO(data), None, len(data) + 1)
        with pytest.raises(SizeMismatch):
            store.put(io.BytesIO(data + b"!"), None, len(data))
        with pytest.raises(ConnectionResetError):
            store.put(FailingReader(data), None, None)
        assert backend_names(store) == set()
        assert store.stats().blobs == 0
        assert put_bytes(store, data).created
        assert read_blob(store, hash_of(data)) == data

    def test_put_again_with_wrong_data(self, store):
        put_bytes(store, b"abcd")
        with pytest.raises(HashMismatch, match="blob hash mismatch"):
            store.put(io.BytesIO(b"wxyz"), hash_of(b"abcd"), 4)
        assert read_blob(store, hash_of(b"abcd")) == b"abcd"

    def test_put_again_with_wrong_size(self, store):
        put_bytes(store, b"abcd")
        with pytest.raises(SizeMismatch, match="after 3 bytes .expected 4"):
            store.put(io.BytesIO(b"abc"), hash_of(b"abcd"), 4)

    @pytest.mark.parametrize(
        "bad",
        ["abc", "", "A" * 96, "g" * 96, "0" * 95, "0" * 97, " " + "0" * 95, 7],
    )
    def test_put_implausible_hash(self, store, bad):
        with pytest.raises(BadParams, match="implausible hash"):
            store.put(io.BytesIO(b"x"), bad, 1)
        with pytest.raises(BadParams, match="implausible hash"):
            store.open(bad)
        assert backend_names(store) == set()

    def test_put_negative_size(self, store):
        with pytest.raises(BadParams, match="negative size"):
            store.put(io.BytesIO(b"x"), hash_of(b"x"), -1)

    def test_put_truncated_stream_stores_nothing(self, store):
        with pytest.raises(SizeMismatch, match="unexpected end"):
            store.put(io.BytesIO(b"abc"), hash_of(b"abcd"), 4)
        with pytest.raises(SizeMismatch):
            store.put(io.BytesIO(b"abc"), None, 4)
        assert backend_names(store) == set()
        assert_not_found(store, hash_of(b"abcd"))

    def test_put_stream_longer_than_declared_stores_nothing(self, store):
        with pytest.raises(SizeMismatch, match="longer than the declared size"):
            store.put(io.BytesIO(b"abcde"), hash_of(b"abcd"), 4)
        assert backend_names(store) == set()
        assert_not_found(store, hash_of(b"abcd"))

    def test_put_client_disconnect_stores_nothing(self, store):
        with pytest.raises(ConnectionResetError):
            store.put(FailingReader(b"x" * 100_000), None, 200_000)
        assert backend_names(store) == set()
        assert store.stats().blobs == 0

    def test_put_concurrent(self, store):
        data = b"concurrent content" * 1000
        barrier = threading.Barrier(3)
        results, errors = [], []

        def put():
            try:
                results.append(
                    store.put(SyncReader(data, barrier), hash_of(data), len(data))
                )
            except Exception as exc:  # pragma: no cover - asserted below
                errors.append(exc)

        threads = [threading.Thread(target=put) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert sum(r.created for r in results) == 1
        assert read_blob(store, hash_of(data)) == data
        assert len(backend_names(store)) == 1

    def test_open_missing(self, store):
        with pytest.raises(BlobNotFound, match="not found"):
            store.open(hash_of(b"never stored"))

    # -- new_upload and put_part -----------------------------------------------

    def test_new_upload(self, store):
        before = datetime.now(UTC)
        expires = before + HOUR
        upload = store.new_upload(expires)
        assert upload
        info = store.upload_info(upload)
        assert info.id == upload and info.parts == () and info.hash is None
        assert info.expires == expires.replace(
            microsecond=expires.microsecond // 1000 * 1000
        )

    def test_new_upload_expiry_too_far(self, store):
        with pytest.raises(BadParams, match="too far in the future"):
            store.new_upload(timedelta(days=30))

    def test_expiry_beyond_the_calendar_is_too_far(self, store):
        # Found by schemathesis: now + the duration overflowed (a 500).
        for far in (timedelta.max, timedelta(seconds=9999999999999)):
            with pytest.raises(BadParams, match="too far in the future"):
                store.new_upload(far)
            with pytest.raises(BadParams, match="too far in the future"):
                store.set_owner("no-such-upload", "owner", far)

    def test_put_part_negative_part(self, store):
        upload = store.new_upload(HOUR)
        with pytest.raises(BadParams, match="negative part number"):
            put_part(store, upload, -1, b"x")

    def test_put_part_number_too_big(self, store):
        store.limits = store.limits.__class__(10, 2**32 - 1, 100)
        upload = store.new_upload(HOUR)
        with pytest.raises(BadParams, match=r"part number 100 too big \(maximum 99\)"):
            put_part(store, upload, 100, b"x")

    def test_put_part_size_non_positive(self, store):
        upload = store.new_upload(HOUR)
        with pytest.raises(BadParams, match="non-positive part 0 size 0"):
            put_part(store, upload, 0, b"")

    def test_put_part_size_too_big(self, store):
        store.limits = store.limits.__class__(1, 5, 400)
        upload = store.new_upload(HOUR)
        with pytest.raises(BadParams, match=r"part 0 too big \(maximum 5\)"):
            put_part(store, upload, 0, b"x" * 20)

    def test_put_part_single(self, store):
        upload = store.new_upload(HOUR)
        assert put_part(store, upload, 0, b"single part")
        assert read_blob(store, hash_of(b"single part")) == b"single part"

    def test_put_part_again(self, store):
        upload = store.new_upload(HOUR)
        data = b"the right bytes"
        with pytest.raises(HashMismatch, match="cannot upload part 0"):
            store.put_part(
                upload, 0, io.BytesIO(b"the wrong bytes"), len(data), hash_of(data)
            )
        assert store.upload_info(upload).parts[0].complete is False
        assert put_part(store, upload, 0, data)
        assert store.upload_info(upload).parts[0].complete is True
        assert read_blob(store, hash_of(data)) == data

    def test_put_part_again_with_different_hash(self, store):
        upload = store.new_upload(HOUR)
        put_part(store, upload, 0, b"first")
        with pytest.raises(
            PartConflict, match="hash mismatch for already uploaded part"
        ):
            put_part(store, upload, 0, b"other")

    def test_put_part_again_with_same_hash(self, store):
        upload = store.new_upload(HOUR)
        assert put_part(store, upload, 0, b"same")
        # Already complete: succeeds without reading the stream.
        assert (
            store.put_part(upload, 0, FailingReader(b""), 4, hash_of(b"same")) is False
        )

    def test_put_part_out_of_order(self, store):
        upload = store.new_upload(HOUR)
        alphabet, digits = b"abcdefghijklmnopqrstuvwxyz", b"0123456789" * 2 + b"012345"
        put_part(store, upload, 1, alphabet, 26)
        put_part(store, upload, 0, digits, 0)
        assert read_blob(store, hash_of(alphabet)) == alphabet
        assert read_blob(store, hash_of(digits)) == digits

    def test_put_part_too_small(self, store):
        store.limits = store.limits.__class__(100, 2**32 - 1, 400)
        upload = store.new_upload(HOUR)
        put_part(store, upload, 0, b"a" * 26)
        with pytest.raises(
            BadParams, match=r"part 0 too small \(need at least 100 bytes, got 26\)"
        ):
            put_part(store, upload, 1, b"b" * 26, 26)

    def test_put_part_too_small_out_of_order(self, store):
        store.limits = store.limits.__class__(100, 2**32 - 1, 400)
        upload = store.new_upload(HOUR)
        put_part(store, upload, 1, b"b" * 26, 20)
        with pytest.raises(
            BadParams, match=r"part 0 too small \(need at least 100 bytes, got 20\)"
        ):
            put_part(store, upload, 0, b"a" * 20, 0)

    def test_put_part_small_at_end(self, store):
        upload = store.new_upload(HOUR)
        put_part(store, upload, 0, b"abcd", 0)
        with pytest.raises(
            BadParams, match=r"part 0 too small \(need at least 10 bytes, got 4\)"
        ):
            put_part(store, upload, 1, b"efghijklmnop", 4)

    def test_put_part_concurrent(self, store):
        upload = store.new_upload(HOUR)
        parts = [bytes([65 + i]) * 65536 for i in range(3)]
        errors = []

        def up(n):
            try:
                put_part(store, upload, n, parts[n], n * 65536)
            except Exception as exc:  # pragma: no cover - asserted below
                errors.append(exc)

        threads = [threading.Thread(target=up, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        for p in parts:
            assert read_blob(store, hash_of(p)) == p
        _, whole = store.finish_upload(upload, [hash_of(p) for p in parts])
        assert read_blob(store, whole) == b"".join(parts)

    def test_put_part_not_found(self, store):
        with pytest.raises(UploadNotFound, match="upload id .unknownblob. not found"):
            put_part(store, "unknownblob", 0, b"x")

    def test_put_part_with_wrong_offset(self, store):
        upload = store.new_upload(HOUR)
        put_part(store, upload, 0, b"a" * 20, 0)
        with pytest.raises(BadParams, match="part 1 should start at 20 not at 22"):
            put_part(store, upload, 1, b"b" * 20, 22)

    def test_put_part_with_wrong_offset_out_of_order(self, store):
        upload = store.new_upload(HOUR)
        put_part(store, upload, 1, b"b" * 20, 22)
        with pytest.raises(BadParams, match="part 1 should start at 20 not at 22"):
            put_part(store, upload, 0, b"a" * 20, 0)

    def test_put_part_infers_offset_from_previous_part(self, store):
        upload = store.new_upload(HOUR)
        put_part(store, upload, 0, b"a" * 12)
        put_part(store, upload, 1, b"b" * 5)
        assert store.upload_info(upload).parts[1].offset == 12

    def test_put_part_out_of_sequence_without_offset(self, store):
        upload = store.new_upload(HOUR)
        with pytest.raises(
            BadParams, match="out-of-sequence part upload with no specified offset"
        ):
            put_part(store, upload, 1, b"b" * 12)

    def test_put_part_after_finish(self, store):
        upload, _, _ = put_multipart(store, b"a" * 12, remove=False)
        with pytest.raises(UploadComplete, match="already complete"):
            put_part(store, upload, 1, b"b" * 5, 12)

    def test_put_part_concurrent_init_of_same_part(self, store, monkeypatch):
        upload = store.new_upload(HOUR)
        stale = store.upload_info(upload)
        # Another writer takes the slot between our read and our init.
        store.catalog.init_part(upload, 0, PartInfo(hash_of(b"a" * 12), 12, 0, False))
        real = type(store.catalog).get_upload
        first = iter([stale])
        monkeypatch.setattr(
            store.catalog,
            "get_upload",
            lambda uid: next(first, None) or real(store.catalog, uid),
        )
        with pytest.raises(PartConflict, match="concurrent upload of the same part"):
            put_part(store, upload, 0, b"b" * 12, 0)

    def test_put_part_negative_offset(self, store):
        upload = store.new_upload(HOUR)
        with pytest.raises(BadParams, match="negative offset"):
            put_part(store, upload, 0, b"x", -1)

    def test_put_part_bad_hash(self, store):
        upload = store.new_upload(HOUR)
        with pytest.raises(BadParams, match="implausible hash"):
            store.put_part(upload, 0, io.BytesIO(b"x"), 1, "nothex")
        assert store.upload_info(upload).parts == ()

    # -- finish_upload ---------------------------------------------------------

    def test_finish_upload_mismatched_part_count(self, store):
        upload = store.new_upload(HOUR)
        put_part(store, upload, 0, b"a" * 10, 0)
        put_part(store, upload, 1, b"b" * 10, 10)
        with pytest.raises(
            BadParams, match=r"part count mismatch \(got 1 but 2 uploaded\)"
        ):
            store.finish_upload(upload, [hash_of(b"a" * 10)])

    def test_finish_upload_mismatched_part_hash(self, store):
        upload = store.new_upload(HOUR)
        put_part(store, upload, 0, b"a" * 10, 0)
        put_part(store, upload, 1, b"b" * 10, 10)
        want = hash_of(b"b" * 10)
        with pytest.raises(
            BadParams, match=f'hash mismatch on part 1 .got "badhash" want "{want}"'
        ):
            store.finish_upload(upload, [hash_of(b"a" * 10), "badhash"])

    def test_finish_upload_part_not_uploaded(self, store):
        upload = store.new_upload(HOUR)
        put_part(store, upload, 1, b"b" * 10, 10)
        with pytest.raises(BadParams, match="part 0 not uploaded yet"):
            store.finish_upload(upload, [hash_of(b"a" * 10), hash_of(b"b" * 10)])

    def test_finish_upload_part_incomplete(self, store):
        upload = store.new_upload(HOUR)
        data = b"a" * 10
        with pytest.raises(HashMismatch):
            store.put_part(upload, 0, io.BytesIO(b"b" * 10), 10, hash_of(data), 0)
        with pytest.raises(BadParams, match="part 0 not uploaded yet"):
            store.finish_upload(upload, [hash_of(data)])

    def test_finish_upload_check_sizes(self, store):
        # Two 20-byte parts that were each valid when uploaded concurrently
        # (each was the last one then) but together part 0 is too small.
        store.limits = store.limits.__class__(50, 2**32 - 1, 400)
        upload = store.new_upload(HOUR)
        a, b = b"a" * 20, b"b" * 20
        for n, data in enumerate((a, b)):
            store.put(io.BytesIO(data), hash_of(data), 20)
            info = PartInfo(hash_of(data), 20, n * 20, True)
            assert store.catalog.init_part(upload, n, info)
        with pytest.raises(
            BadParams, match=r"part 0 too small \(need at least 50 bytes, got 20\)"
        ):
            store.finish_upload(upload, [hash_of(a), hash_of(b)])

    def test_finish_upload_success(self, store):
        a, b = b"a" * 10, b"b" * 7
        _, index, whole = put_multipart(store, a, b)
        assert whole == hash_of(a + b)
        assert index == MultipartIndex((hash_of(a), hash_of(b)), (10, 7))
        assert read_blob(store, whole) == a + b
        assert store.stat(whole).is_composite

    def test_finish_upload_success_one_part(self, store):
        _, index, whole = put_multipart(store, b"only one")
        assert whole == hash_of(b"only one")
        assert index == MultipartIndex((whole,), (8,))

    def test_finish_upload_empty(self, store):
        upload = store.new_upload(HOUR)
        index, whole = store.finish_upload(upload, [])
        assert whole == EMPTY_HASH and len(index) == 0
        assert read_blob(store, whole) == b""

    def test_finish_upload_not_found(self, store):
        with pytest.raises(UploadNotFound, match="upload id .not-an-id. not found"):
            store.finish_upload("not-an-id", [])

    def test_finish_upload_again(self, store):
        upload, index, whole = put_multipart(store, b"a" * 10, b"b" * 3, remove=False)
        assert store.finish_upload(upload, [hash_of(b"a" * 10), hash_of(b"b" * 3)]) == (
            index,
            whole,
        )

    def test_finish_upload_removed_while_hashing(self, store, monkeypatch):
        upload = store.new_upload(HOUR)
        put_part(store, upload, 0, b"a" * 20, 0)
        put_part(store, upload, 1, b"b" * 50, 20)
        real_open = store.open

        def open_and_remove(h, index=None):
            if h == hash_of(b"b" * 50):
                store.remove_upload(upload)  # removed while the hash is computed
            return real_open(h, index)

        monkeypatch.setattr(store, "open", open_and_remove)
        with pytest.raises(UploadNotFound, match="upload expired or removed"):
            store.finish_upload(upload, [hash_of(b"a" * 20), hash_of(b"b" * 50)])

    # -- removal, owner, expiry --------------------------------------------------

    def test_remove_upload_success_with_no_part(self, store):
        upload = store.new_upload(HOUR)
        store.remove_upload(upload)
        with pytest.raises(UploadNotFound):
            store.upload_info(upload)

    def test_remove_upload_on_non_existing_upload(self, store):
        store.remove_upload("nonexistent")

    def test_remove_upload_success_with_parts(self, store):
        upload = store.new_upload(HOUR)
        put_part(store, upload, 0, b"part data")
        assert store.gc([], utcnow()).deleted == 0  # the upload protects it
        store.remove_upload(upload)
        store.gc([], utcnow())
        assert_not_found(store, hash_of(b"part data"))

    def test_set_owner(self, store):
        upload = store.new_upload(HOUR)
        put_part(store, upload, 0, b"a" * 10)
        with pytest.raises(Conflict, match="cannot set owner on incomplete upload"):
            store.set_owner(upload, "me", HOUR)
        store.finish_upload(upload, [hash_of(b"a" * 10)])
        expires = utcnow() + timedelta(minutes=10)
        store.set_owner(upload, "me", expires)
        assert store.upload_info(upload).owner == "me"
        assert store.upload_info(upload).expires == expires
        with pytest.raises(UploadInUse, match="upload already used by something else"):
            store.set_owner(upload, "other", HOUR)
        store.set_owner(upload, "me", HOUR)
        store.remove_upload(upload)
        with pytest.raises(UploadNotFound, match="upload has been removed"):
            store.set_owner(upload, "me", HOUR)

    @pytest.mark.parametrize("owner", ["", "a\ud800"])
    def test_an_owner_that_is_not_text_is_bad_params(self, store, owner):
        upload = store.new_upload(HOUR)
        put_part(store, upload, 0, b"a" * 10)
        store.finish_upload(upload, [hash_of(b"a" * 10)])
        with pytest.raises(BadParams, match="owner"):
            store.set_owner(upload, owner, HOUR)
        assert store.upload_info(upload).owner is None

    def test_remove_finished_upload_removes_parts(self, store):
        _, _, whole = put_multipart(store, b"a" * 10, b"b" * 4)
        stats = store.gc([], utcnow())
        assert stats.deleted == 3  # the composite and both parts
        assert_not_found(store, whole)
        assert_not_found(store, hash_of(b"a" * 10))
        assert backend_names(store) == set()

    def test_remove_expired_uploads(self, store):
        now = utcnow()
        uploads = {}
        for delta in (
            -timedelta(minutes=1),
            -timedelta(seconds=1),
            timedelta(minutes=1),
            HOUR,
        ):
            data = f"content {delta}".encode()
            upload = store.new_upload(now + delta)
            put_part(store, upload, 0, data)
            store.finish_upload(upload, [hash_of(data)])
            uploads[upload] = (delta, data)
        assert store.remove_expired_uploads() == 2
        store.gc([], utcnow())
        for upload, (delta, data) in uploads.items():
            if delta < timedelta(0):
                with pytest.raises(UploadNotFound):
                    store.upload_info(upload)
                assert_not_found(store, hash_of(data))
            else:
                store.finish_upload(upload, [hash_of(data)])
                assert read_blob(store, hash_of(data)) == data

    # -- multipart reads -------------------------------------------------------

    PARTS = (
        b"123456789 12345",
        b"abcdefghijklmnopqrstuvwxyz",
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    )

    def test_open_empty_multipart(self, store):
        with store.open(EMPTY_HASH, MultipartIndex((), ())) as f:
            assert f.size == 0 and f.read() == b"" and f.seek(0) == 0

    def test_multipart_read_all(self, store):
        _, index, whole = put_multipart(store, *self.PARTS, remove=False)
        assert read_blob(store, whole) == b"".join(self.PARTS)
        with store.open(whole, index) as f:  # the reference's way, with the index
            assert f.read() == b"".join(self.PARTS)

    def test_multipart_small_reads(self, store):
        _, _, whole = put_multipart(store, *self.PARTS)
        got = bytearray()
        with store.open(whole) as f:
            while b := f.read(1):
                got += b
        assert bytes(got) == b"".join(self.PARTS)

    def test_multipart_single_part(self, store):
        _, index, whole = put_multipart(store, b"just one part")
        with store.open(whole, index) as f:
            assert f.read() == b"just one part"

    def test_multipart_close_without_reading(self, store):
        _, _, whole = put_multipart(store, *self.PARTS)
        store.open(whole).close()

    def test_upload_info(self, store):
        upload, index, whole = put_multipart(store, *self.PARTS, remove=False)
        info = store.upload_info(upload)
        assert info.expires > utcnow() + timedelta(seconds=50)
        assert [p.offset for p in info.parts] == [0, 15, 41]
        assert all(p.complete for p in info.parts)
        assert info.hash == whole == hash_of(b"".join(self.PARTS))

    @pytest.mark.parametrize(
        ("start", "offset", "whence", "pos", "want"),
        [
            (0, 0, io.SEEK_SET, 0, b"123456789 "),
            (0, 200, io.SEEK_SET, 200, b""),
            (0, 7, io.SEEK_SET, 7, b"89 12345ab"),  # reads across the part boundary
            (0, -3, io.SEEK_END, 64, b"XYZ"),
            (20, -10, io.SEEK_CUR, 10, b"12345abcde"),
            (60, 0, io.SEEK_SET, 0, b"123456789 "),
        ],
    )
    def test_multipart_seek(self, store, start, offset, whence, pos, want):
        _, _, whole = put_multipart(store, *self.PARTS)
        with store.open(whole) as f:
            f.seek(start)
            assert f.seek(offset, whence) == pos
            assert f.read(10) == want

    def test_multipart_negative_seek_is_an_error(self, store):
        _, _, whole = put_multipart(store, *self.PARTS)
        with store.open(whole) as f, pytest.raises(ValueError, match="negative seek"):
            f.seek(-3)

    def test_index_size_length_mismatch(self, store):
        with pytest.raises(Corrupt, match="index size/length mismatch"):
            MultipartIndex(("a",), (1, 2))

    def test_composite_missing_part_is_not_found(self, store):
        _, index, whole = put_multipart(store, *self.PARTS)
        # Delete a part behind the store's back: reading must fail clearly.
        store.catalog.delete_blob_if(
            index.hashes[1], store.stat(index.hashes[1]).name, utcnow()
        )
        with store.open(whole) as f, pytest.raises(BlobNotFound):
            f.read()

    # -- GC races and roots ------------------------------------------------------

    def test_gc_race_with_dedup_put_keeps_blob(self, store, monkeypatch):
        h = put_bytes(store, b"popular", now=utcnow() - HOUR).hash
        real_delete = store.catalog.delete_blob_if

        def put_then_delete(hash, name, before):
            put_bytes(store, b"popular")  # a concurrent put bumps the put time
            return real_delete(hash, name, before)

        monkeypatch.setattr(store.catalog, "delete_blob_if", put_then_delete)
        stats = store.gc([], utcnow() - timedelta(minutes=1))
        assert stats.deleted == 0
        assert read_blob(store, h) == b"popular"

    def test_gc_skips_empty_upload_hash_and_keeps_in_progress_parts(self, store):
        upload = store.new_upload(HOUR)
        put_part(store, upload, 0, b"a" * 10)
        stats = store.gc([], utcnow())
        assert stats.deleted == 0 and stats.errors == 0
        assert read_blob(store, hash_of(b"a" * 10)) == b"a" * 10

    def test_gc_keeps_named_refs_and_composite_parts(self, store):
        _, index, whole = put_multipart(store, b"a" * 10, b"b" * 3)
        store.put_ref("releases/1", whole)
        assert store.gc([], utcnow()).deleted == 0
        assert read_blob(store, whole) == b"a" * 10 + b"b" * 3
        store.delete_ref("releases/1")
        assert store.gc([], utcnow()).deleted == 3

    def test_gc_records_its_summary_in_the_catalog(self, store):
        from blobstore.collector import last_runs

        put_bytes(store, b"to be collected")
        stats = store.gc([], utcnow())
        recorded = last_runs(store)
        assert recorded["last_run"]["deleted"] == stats.deleted == 1
        assert recorded["last_run"]["reclaimed_bytes"] == 15
        assert recorded["last_failure"] is None

    def test_gc_failure_is_recorded(self, store):
        from blobstore.collector import last_runs
        from blobstore.refsources import IterableRefSource

        def broken():
            raise ConnectionError("refs database down")
            yield  # pragma: no cover

        from blobstore.errors import RefSourceError

        with pytest.raises(RefSourceError, match="ref source iterable failed"):
            store.gc([], utcnow(), ref_sources=[IterableRefSource(broken())])
        assert "refs database down" in last_runs(store)["last_failure"]["error"]

    def test_gc_dry_run_deletes_nothing(self, store):
        h = put_bytes(store, b"doomed").hash
        stats = store.gc([], utcnow(), dry_run=True)
        assert stats.deleted == 1 and stats.reclaimed_bytes == 6
        assert read_blob(store, h) == b"doomed"

    def test_gc_failing_ref_source_deletes_nothing(self, store):
        from blobstore.refsources import RefSource

        class Broken(RefSource):
            def hashes(self):
                yield hash_of(b"x")
                raise ConnectionError("artifact database went away")

        from blobstore.errors import RefSourceError

        h = put_bytes(store, b"keep me").hash
        expired = store.new_upload(utcnow() - HOUR)
        with pytest.raises(RefSourceError, match="ref source Broken failed") as err:
            store.gc([], utcnow() + HOUR, ref_sources=[Broken()])
        assert isinstance(err.value.__cause__, ConnectionError)
        assert read_blob(store, h) == b"keep me"
        # It stopped before changing anything, expired uploads included.
        assert store.upload_info(expired).id == expired

    def test_gc_sweeps_orphans_older_than_the_margin(self, store):
        from blobstore.hashing import VerifyingReader

        store.backend.put(
            "0123456789abcdef0123456789abcdef",
            VerifyingReader(io.BytesIO(b"orphan")),
            6,
        )
        kept = put_bytes(store, b"kept").hash
        stats = store.gc([kept], utcnow())  # default margin: too young to sweep
        assert stats.orphans_swept == 0
        # A second ahead: the cut-off is whole milliseconds, the orphan's
        # mtime may be later in the same millisecond.
        later = utcnow() + timedelta(seconds=1)
        stats = store.gc([kept], later, orphan_margin=timedelta(0))
        assert stats.orphans_swept == 1 and stats.orphan_bytes == 6
        assert backend_names(store) == {store.stat(kept).name}

    def test_gc_lease_excludes_a_second_pass(self, store):
        from blobstore.errors import LeaseHeld

        assert store.catalog.acquire_lease(
            "gc", "someone-else", timedelta(minutes=5), utcnow()
        )
        with pytest.raises(LeaseHeld):
            store.gc([], utcnow())
        store.catalog.release_lease("gc", "someone-else")
        store.gc([], utcnow())

    # -- named refs ---------------------------------------------------------------

    def test_refs(self, store):
        h = put_bytes(store, b"pinned").hash
        assert store.put_ref("a/b/c", h) is True
        assert store.put_ref("a/b/c", h) is False
        assert store.get_ref("a/b/c").hash == h
        store.put_ref("a/x", h)
        store.put_ref("b", h)
        assert [r.name for r in store.list_refs(prefix="a/")] == ["a/b/c", "a/x"]
        assert [r.name for r in store.list_refs(after="a/b/c")] == ["a/x", "b"]
        store.delete_ref("a/x")
        from blobstore.errors import RefNotFound

        with pytest.raises(RefNotFound):
            store.get_ref("a/x")
        with pytest.raises(RefNotFound):
            store.delete_ref("a/x")

    def test_ref_to_missing_blob(self, store):
        with pytest.raises(BlobNotFound):
            store.put_ref("dangling", hash_of(b"absent"))

    @pytest.mark.parametrize(
        "name",
        [
            "",
            "bad\nname",
            "x" * 1025,
            "/lead",
            "trail/",
            "a//b",
            ".",
            "..",
            "a/./b",
            "a/../b",
            "../etc/passwd",
        ],
    )
    def test_ref_bad_names(self, store, name):
        with pytest.raises(BadParams):
            store.put_ref(name, hash_of(b"absent"))
        with pytest.raises(BadParams):
            store.get_ref(name)
        with pytest.raises(BadParams):
            store.delete_ref(name)

    @pytest.mark.parametrize("name", ["...", ".hidden", "a/..b", "v1.0/.x"])
    def test_ref_names_with_dots_that_are_not_segments(self, store, name):
        h = put_bytes(store, b"dots").hash
        assert store.put_ref(name, h) is True
        assert store.get_ref(name).hash == h
