"""Small helpers shared by the test suites (the reference's test helpers)."""

from __future__ import annotations

import functools
import hashlib
import io
import threading
import types
from typing import Any

from blobstore.hashing import hash_bytes

__all__ = [
    "DataSource",
    "FailingReader",
    "NoSeekReader",
    "SyncReader",
    "hash_bytes",
    "hash_of",
    "mongomock_client",
]


def hash_of(data: bytes) -> str:
    return hash_bytes(data)


class DataSource(io.RawIOBase):
    """A deterministic stream of *size* bytes (pattern from *fill*), generated
    as it is read: large blobs without large memory. The byte at position
    *p* is always the same, whatever sizes the reader asks for."""

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


@functools.cache
def _enable_mongomock_gridfs() -> None:
    import mongomock.gridfs

    mongomock.gridfs.enable_gridfs_integration()


def mongomock_client(**kwargs: Any) -> Any:
    """A mongomock client that pymongo's GridFS can use.

    * mongomock only lets gridfs use its databases and collections once
      ``enable_gridfs_integration`` has patched gridfs's isinstance checks
      (the patch still accepts the real pymongo types). Done once: every
      call starts another patcher that is never stopped.
    * ``GridFSBucket`` (pymongo >= 4.2) reads ``client.options.timeout`` as
      the client-side operation timeout of its ``_csot.apply`` methods.
      mongomock 4.3 has no ``options``, and its attribute fallback hands back
      a *collection* named ``options.timeout``: the first such bucket call
      sets pymongo's timeout context variable to that collection, then fails
      with a TypeError computing the deadline without resetting it, and every
      later call in that thread skips the broken path and seems to work -- so
      tests would pass or fail by call order. The client below supplies the
      real default (no timeout) instead of pinning an old pymongo.
    """
    import mongomock

    _enable_mongomock_gridfs()
    client = mongomock.MongoClient(**kwargs)
    client.options = types.SimpleNamespace(timeout=None)
    return client
