"""The Backend contract suite: every backend passes the same tests.

A backend's test module subclasses :class:`BackendContract` and provides a
``backend`` fixture (a fresh, empty backend per test)::

    class TestLocalBackend(BackendContract):
        @pytest.fixture
        def backend(self, tmp_path):
            return LocalBackend(tmp_path)
"""

from __future__ import annotations

import io
import os
import threading

import pytest

from blobstore.backends.base import Backend
from blobstore.errors import BlobNotFound
from blobstore.errors import HashMismatch
from blobstore.errors import SizeMismatch
from blobstore.hashing import VerifyingReader
from tests.helpers import DataSource
from tests.helpers import FailingReader
from tests.helpers import NoSeekReader
from tests.helpers import hash_of


def read_all(backend: Backend, name: str) -> bytes:
    f, size = backend.open(name)
    with f:
        data = f.read()
    assert len(data) == size
    return data


def names(backend: Backend) -> set[str]:
    return {o.name for o in backend.list()}


class BackendContract:
    """Tests every backend must pass. Subclasses supply ``backend``."""

    #: Sizes to round-trip; subclasses with block structure may add theirs.
    sizes = (0, 1, 4095, 4096, 65537, 3 * 1024 * 1024 + 7)

    def test_put_then_open_round_trips_each_size(self, backend):
        for i, size in enumerate(self.sizes):
            data = os.urandom(size)
            backend.put(f"obj{i}", io.BytesIO(data), size)
            assert read_all(backend, f"obj{i}") == data

    def test_put_without_size_hint(self, backend):
        backend.put("nosize", NoSeekReader(b"some bytes"), None)
        assert read_all(backend, "nosize") == b"some bytes"

    def test_put_streams_a_large_object(self, backend):
        size = 24 * 1024 * 1024 + 3
        backend.put("large", DataSource(size, 7), size)
        f, got = backend.open("large")
        with f:
            h = VerifyingReader(f, size)
            h.drain()
        assert got == size
        assert h.hash == DataSource.digest(size, 7)

    def test_open_missing_raises_not_found(self, backend):
        with pytest.raises(BlobNotFound):
            backend.open("missing")

    def test_remove_is_idempotent(self, backend):
        backend.put("gone", io.BytesIO(b"x"), 1)
        backend.remove("gone")
        backend.remove("gone")
        backend.remove("never-was")
        with pytest.raises(BlobNotFound):
            backend.open("gone")
        assert "gone" not in names(backend)

    def test_list_reports_names_and_sizes(self, backend):
        backend.put("a1", io.BytesIO(b"12345"), 5)
        backend.put("b2", io.BytesIO(b""), 0)
        listed = {o.name: o for o in backend.list()}
        assert set(listed) == {"a1", "b2"}
        assert listed["a1"].size == 5
        assert listed["b2"].size == 0
        assert listed["a1"].mtime.tzinfo is not None

    def test_failing_stream_leaves_nothing(self, backend):
        with pytest.raises(ConnectionResetError):
            backend.put("broken", FailingReader(os.urandom(100_000)), 200_000)
        with pytest.raises(BlobNotFound):
            backend.open("broken")
        assert names(backend) == set()

    def test_hash_mismatch_raised_by_stream_leaves_nothing(self, backend):
        data = os.urandom(50_000)
        reader = VerifyingReader(io.BytesIO(data), len(data), hash_of(b"other"))
        with pytest.raises(HashMismatch):
            backend.put("badhash", reader, len(data))
        assert names(backend) == set()

    def test_short_stream_leaves_nothing(self, backend):
        reader = VerifyingReader(io.BytesIO(b"abc"), 4)
        with pytest.raises(SizeMismatch):
            backend.put("short", reader, 4)
        assert names(backend) == set()

    def test_reader_seeks_with_io_semantics(self, backend):
        data = bytes(range(256)) * 40
        backend.put("seek", io.BytesIO(data), len(data))
        f, size = backend.open("seek")
        with f:
            assert f.seekable()
            assert f.seek(100) == 100
            assert f.read(10) == data[100:110]
            assert f.seek(-5, io.SEEK_END) == size - 5
            assert f.read() == data[-5:]
            f.seek(size + 100)
            assert f.read(10) == b""
            f.seek(10)
            assert f.seek(5, io.SEEK_CUR) == 15
            assert f.read(3) == data[15:18]

    def test_concurrent_puts_of_different_objects(self, backend):
        blobs = {f"c{i}": os.urandom(100_000 + i) for i in range(6)}
        errors = []

        def put(name, data):
            try:
                backend.put(name, io.BytesIO(data), len(data))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=put, args=kv) for kv in blobs.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        for name, data in blobs.items():
            assert read_all(backend, name) == data

    @pytest.mark.parametrize(
        "name", ["../escape", "a/b", "", ".hidden", "x" * 200, "a\x00b"]
    )
    def test_rejects_names_that_could_escape(self, backend, name):
        with pytest.raises(ValueError):
            backend.put(name, io.BytesIO(b"x"), 1)
        with pytest.raises(ValueError):
            backend.open(name)
        with pytest.raises(ValueError):
            backend.remove(name)

    def test_check_passes_when_healthy(self, backend):
        backend.check()
