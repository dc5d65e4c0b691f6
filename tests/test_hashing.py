"""VerifyingReader with an MD5: the MD5 of large chunks is computed in a
helper thread, and must come out exactly as hashlib's, whatever the chunk
sizes, with readers running concurrently, and in a forked child."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import threading

import pytest

from blobstore import hashing
from blobstore.errors import HashMismatch
from blobstore.errors import SizeMismatch
from blobstore.hashing import PARALLEL_MIN
from blobstore.hashing import VerifyingReader

DATA = os.urandom(3 * 1024 * 1024 + 12345)


class Chunky(io.RawIOBase):
    """Returns *sizes* bytes per read in turn (big and small chunks)."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        super().__init__()
        self._data = memoryview(data)
        self._sizes = sizes
        self._i = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = min(len(buffer), self._sizes[self._i % len(self._sizes)])
        self._i += 1
        n = min(size, len(self._data))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


def _digests(data: bytes) -> tuple[str, str]:
    return hashlib.sha384(data).hexdigest(), hashlib.md5(data).hexdigest()


@pytest.mark.parametrize(
    "sizes",
    [[1 << 20], [PARALLEL_MIN], [PARALLEL_MIN - 1], [1000, 1 << 20, 70_000, 1]],
)
def test_md5_and_sha384_match_hashlib(sizes):
    reader = VerifyingReader(Chunky(DATA, sizes), len(DATA), md5=True)
    reader.drain()
    assert (reader.hash, reader.md5) == _digests(DATA)
    assert reader.size == len(DATA)


def test_errors_are_raised_as_before_with_md5():
    sha, _ = _digests(DATA)
    with pytest.raises(HashMismatch):
        VerifyingReader(io.BytesIO(DATA[:-1] + b"x"), len(DATA), sha, md5=True).drain()
    with pytest.raises(SizeMismatch):
        VerifyingReader(io.BytesIO(DATA[:-1]), len(DATA), sha, md5=True).drain()


def test_concurrent_readers_each_get_their_own_digests():
    blobs = [os.urandom(2 * 1024 * 1024 + i) for i in range(8)]
    results: dict[int, tuple[str | None, str | None]] = {}

    def put(i: int) -> None:
        reader = VerifyingReader(io.BytesIO(blobs[i]), md5=True)
        reader.drain()
        results[i] = (reader.hash, reader.md5)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(len(blobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: _digests(b) for i, b in enumerate(blobs)}


def _child(queue) -> None:
    reader = VerifyingReader(io.BytesIO(DATA), md5=True)
    reader.drain()
    queue.put((reader.hash, reader.md5))


def test_a_forked_child_makes_its_own_helpers():
    # The parent's pool exists (and has threads) before the fork, as in a
    # gunicorn master that handled a put before forking workers.
    VerifyingReader(io.BytesIO(DATA), md5=True).drain()
    assert hashing._helpers is not None
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    assert queue.get(timeout=60) == _digests(DATA)
    child.join(timeout=60)
    assert child.exitcode == 0
