"""What the library's Store and the HTTP Client both promise, where they
overlap: one suite, run over a Store in-process and over a Client talking
to a real ``blobstore serve`` (tests/test_client.py). Code written against
one works against the other: same arguments, same results, same exception
classes.

The ``blobs`` fixture is either. The service is shared by a whole module,
so every test uses content and names of its own (:func:`unique`).
"""

from __future__ import annotations

import hashlib
import io
import uuid

import pytest

from blobstore.errors import BadParams
from blobstore.errors import BlobNotFound
from blobstore.errors import HashMismatch
from blobstore.errors import NotFound
from blobstore.errors import RefNotFound
from blobstore.errors import SizeMismatch

__all__ = ["BlobsContract", "unique"]

MiB = 1024 * 1024


def unique(size: int = 64) -> bytes:
    """Content no other test stores."""
    seed = uuid.uuid4().bytes
    return (seed * (size // len(seed) + 1))[:size]


def sha384(data: bytes) -> str:
    return hashlib.sha384(data).hexdigest()


class OneWay(io.RawIOBase):
    """A stream that cannot seek (a pipe, a socket)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(min(len(buffer), 1000))
        buffer[: len(chunk)] = chunk
        return len(chunk)


class BlobsContract:
    # -- put ---------------------------------------------------------------

    @pytest.mark.parametrize(
        "stream", [io.BytesIO, OneWay], ids=["seekable", "one-way"]
    )
    def test_put_computes_the_hash_and_dedups(self, blobs, stream):
        data = unique(3000)
        first = blobs.put(stream(data))
        assert (first.hash, first.size, first.created) == (sha384(data), 3000, True)
        again = blobs.put(stream(data))
        assert (again.hash, again.size, again.created) == (sha384(data), 3000, False)

    @pytest.mark.parametrize(
        "stream", [io.BytesIO, OneWay], ids=["seekable", "one-way"]
    )
    def test_put_with_its_hash_and_size(self, blobs, stream):
        data = unique(5000)
        result = blobs.put(stream(data), sha384(data), 5000)
        assert result.hash == sha384(data)
        assert blobs.stat(result.hash).size == 5000

    @pytest.mark.parametrize(
        "stream", [io.BytesIO, OneWay], ids=["seekable", "one-way"]
    )
    def test_a_wrong_hash_stores_nothing(self, blobs, stream):
        data, other = unique(100), unique(100)
        with pytest.raises(HashMismatch):
            blobs.put(stream(data), sha384(other))
        assert not blobs.exists(sha384(data))
        assert not blobs.exists(sha384(other))

    @pytest.mark.parametrize("size", [99, 101])
    def test_a_wrong_size_stores_nothing(self, blobs, size):
        data = unique(100)
        with pytest.raises(SizeMismatch):
            blobs.put(OneWay(data), size=size)
        assert not blobs.exists(sha384(data))

    @pytest.mark.parametrize("hash", ["", "abc", "x" * 96, sha384(b"").upper()])
    def test_a_malformed_hash_is_bad_params(self, blobs, hash):
        with pytest.raises(BadParams):
            blobs.put(io.BytesIO(b"x"), hash)
        with pytest.raises(BadParams):
            blobs.stat(hash)

    def test_the_empty_blob(self, blobs):
        result = blobs.put(io.BytesIO(b""))
        assert result.hash == sha384(b"")
        with blobs.open(result.hash) as reader:
            assert reader.size == 0
            assert reader.read() == b""

    # -- read ----------------------------------------------------------------

    def test_open_reads_seeks_and_ranges(self, blobs):
        data = unique(3 * MiB + 7)
        digest = blobs.put(io.BytesIO(data)).hash
        with blobs.open(digest) as reader:
            assert reader.size == len(data)
            assert reader.hash == digest
            assert reader.read(10) == data[:10]
            assert reader.tell() == 10
            reader.seek(2 * MiB)
            assert reader.read(100) == data[2 * MiB : 2 * MiB + 100]
            reader.seek(-5, io.SEEK_END)
            assert reader.read() == data[-5:]
            assert reader.read() == b""
            reader.seek(len(data) + 10)
            assert reader.read(3) == b""
            reader.seek(0)
            assert reader.read() == data
            with pytest.raises(ValueError):
                reader.seek(-1)

    def test_readinto_fills_a_buffer(self, blobs):
        data = unique(10000)
        digest = blobs.put(io.BytesIO(data)).hash
        got = bytearray()
        buffer = bytearray(4096)
        with blobs.open(digest) as reader:
            while n := reader.readinto(buffer):
                got += buffer[:n]
        assert bytes(got) == data

    def test_stat_and_exists(self, blobs):
        data = unique(1234)
        digest = blobs.put(io.BytesIO(data)).hash
        record = blobs.stat(digest)
        assert (record.hash, record.size) == (digest, 1234)
        assert record.put_time.tzinfo is not None
        assert blobs.exists(digest)

    def test_an_unknown_blob_is_blob_not_found(self, blobs):
        missing = sha384(unique())
        assert not blobs.exists(missing)
        with pytest.raises(BlobNotFound):
            blobs.stat(missing)
        with pytest.raises(BlobNotFound):
            blobs.open(missing)
        with pytest.raises(NotFound):  # the base class catches it too
            blobs.open(missing)

    def test_stats_count_what_is_stored(self, blobs):
        before = blobs.stats()
        blobs.put(io.BytesIO(unique(777)))
        after = blobs.stats()
        assert after.blobs == before.blobs + 1
        assert after.bytes == before.bytes + 777

    # -- refs ----------------------------------------------------------------

    def test_refs_put_get_list_delete(self, blobs):
        top = f"contract-{uuid.uuid4().hex}"
        a = blobs.put(io.BytesIO(unique())).hash
        b = blobs.put(io.BytesIO(unique())).hash
        assert blobs.put_ref(f"{top}/a/1", a) is True
        assert blobs.put_ref(f"{top}/a/1", a) is False
        assert blobs.put_ref(f"{top}/a/1", b) is False  # moved
        blobs.put_ref(f"{top}/a/2", a)
        blobs.put_ref(f"{top}/b", a)
        assert blobs.get_ref(f"{top}/a/1").hash == b
        names = [r.name for r in blobs.list_refs(prefix=f"{top}/")]
        assert names == [f"{top}/a/1", f"{top}/a/2", f"{top}/b"]
        page = blobs.list_refs(prefix=f"{top}/", after=f"{top}/a/1", limit=1)
        assert [r.name for r in page] == [f"{top}/a/2"]
        assert [r.name for r in blobs.list_refs(prefix=f"{top}/a/")] == [
            f"{top}/a/1",
            f"{top}/a/2",
        ]
        blobs.delete_ref(f"{top}/a/2")
        with pytest.raises(RefNotFound):
            blobs.get_ref(f"{top}/a/2")
        with pytest.raises(RefNotFound):
            blobs.delete_ref(f"{top}/a/2")
        assert blobs.get_ref(f"{top}/b").mtime.tzinfo is not None

    def test_a_ref_to_a_missing_blob_is_blob_not_found(self, blobs):
        with pytest.raises(BlobNotFound):
            blobs.put_ref(f"dangling-{uuid.uuid4().hex}", sha384(unique()))

    @pytest.mark.parametrize("name", ["", "a//b", "a/../b", "x/.", "bad\nname"])
    def test_bad_ref_names_are_bad_params(self, blobs, name):
        digest = blobs.put(io.BytesIO(unique())).hash
        with pytest.raises(BadParams):
            blobs.put_ref(name, digest)

    @pytest.mark.parametrize("limit", [0, 10001])
    def test_a_bad_page_size_is_bad_params(self, blobs, limit):
        with pytest.raises(BadParams):
            blobs.list_refs(limit=limit)

    def test_names_with_spaces_and_unicode(self, blobs):
        digest = blobs.put(io.BytesIO(unique())).hash
        name = f"files/{uuid.uuid4().hex}/ä b%20c?d#e"
        blobs.put_ref(name, digest)
        assert blobs.get_ref(name).name == name
        assert blobs.get_ref(name).hash == digest
