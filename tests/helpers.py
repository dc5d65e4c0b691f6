"""Small helpers shared by the test suites (the reference's test helpers)."""

from __future__ import annotations

import hashlib
import io
import threading

from blobstore.hashing import hash_bytes

__all__ = [
    "DataSource",
    "FailingReader",
    "NoSeekReader",
    "SyncReader",
    "hash_bytes",
    "hash_of",
]


def hash_of(data: bytes) -> str:
    return hash_bytes(data)


class DataSource(io.RawIOBase):
    """A deterministic stream of *size* bytes (pattern from *fill*), generated
    as it is read: large blobs without large memory."""

    def __init__(self, size: int, fill: int = 0) -> None:
        super().__init__()
        self._left = size
        self._pos = 0
        self._block = bytes((fill + i) % 251 for i in range(65536))

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        # The content is a function of the position only, so it is the same
        # however the reader sizes its reads.
        view = memoryview(buffer).cast("B")
        start = self._pos % len(self._block)
        n = min(len(view), self._left, len(self._block) - start)
        view[:n] = self._block[start : start + n]
        self._left -= n
        self._pos += n
        return n

    @staticmethod
    def digest(size: int, fill: int = 0) -> str:
        h = hashlib.sha384()
        src = DataSource(size, fill)
        while chunk := src.read(1 << 20):
            h.update(chunk)
        return h.hexdigest()


class NoSeekReader:
    """Hides seek/readinto: only ``read`` (like a socket body)."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)


class FailingReader:
    """Yields *data*, then raises *exc* instead of EOF (a client that drops)."""

    def __init__(self, data: bytes, exc: Exception | None = None) -> None:
        self._f = io.BytesIO(data)
        self._exc = exc or ConnectionResetError("client went away")

    def read(self, n: int = -1) -> bytes:
        chunk = self._f.read(n)
        if not chunk:
            raise self._exc
        return chunk


class SyncReader:
    """Blocks its first read until every party of *barrier* is reading, so
    concurrent puts really overlap (no sleeps)."""

    def __init__(self, data: bytes, barrier: threading.Barrier) -> None:
        self._f = io.BytesIO(data)
        self._barrier = barrier
        self._started = False

    def read(self, n: int = -1) -> bytes:
        if not self._started:
            self._started = True
            self._barrier.wait(timeout=30)
        return self._f.read(n)
