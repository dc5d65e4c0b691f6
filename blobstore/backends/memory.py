"""An in-memory backend: for tests and for embedding in short-lived programs.

It follows the whole Backend contract, so the contract suite runs against it
and the Store suite can use it when a test does not care where bytes live.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from typing import BinaryIO

from blobstore.backends.base import Backend
from blobstore.backends.base import ObjectInfo
from blobstore.backends.base import check_name
from blobstore.errors import BlobNotFound
from blobstore.hashing import CHUNK_SIZE
from blobstore.hashing import Readable

__all__ = ["MemoryBackend"]


class MemoryBackend(Backend):
    """Keeps every object as bytes in a dict guarded by a lock."""

    type_name = "memory"

    def __init__(self) -> None:
        self._objects: dict[str, tuple[bytes, datetime]] = {}
        self._lock = threading.Lock()

    def put(self, name: str, stream: Readable, size: int | None = None) -> None:
        check_name(name)
        buf = io.BytesIO()
        while chunk := stream.read(CHUNK_SIZE):
            buf.write(chunk)
        with self._lock:
            self._objects[name] = (buf.getvalue(), datetime.now(UTC))

    def open(self, name: str) -> tuple[BinaryIO, int]:
        check_name(name)
        with self._lock:
            entry = self._objects.get(name)
        if entry is None:
            raise BlobNotFound(f"backend object {name!r} not found")
        return io.BytesIO(entry[0]), len(entry[0])

    def remove(self, name: str) -> None:
        check_name(name)
        with self._lock:
            self._objects.pop(name, None)

    def list(self) -> Iterator[ObjectInfo]:
        with self._lock:
            items = list(self._objects.items())
        for name, (data, mtime) in items:
            yield ObjectInfo(name, len(data), mtime)

    def set_mtime(self, name: str, mtime: datetime) -> None:
        """Age an object (tests of the orphan sweep use this)."""
        with self._lock:
            data, _ = self._objects[name]
            self._objects[name] = (data, mtime)
