"""Overlap reading (and hashing) a stream with writing it somewhere else.

A put reads the client's bytes, hashes them (SHA-384, MD5 for S3) and writes
them to a backend. Done in one thread these costs add up; hashlib and socket
and file I/O all release the GIL on large buffers, so a second thread that
reads and hashes chunk *n+1* while the backend writes chunk *n* brings a put
close to the slower of the two instead of their sum.

:class:`ReadAhead` runs the source's ``readinto`` in a background thread into
a small ring of reused buffers (memory stays at ``depth × chunk``), and hands
them to the consumer in order. An exception in the source (a hash mismatch at
EOF, a client that went away) is raised to the consumer at the point in the
stream where it happened, so backends abort exactly as they would without
read-ahead. If the consumer stops early, :meth:`close` stops the thread.
"""

from __future__ import annotations

import io
import queue
import threading

from blobstore.hashing import CHUNK_SIZE

__all__ = ["ReadAhead"]

_EOF = object()


class ReadAhead(io.RawIOBase):
    """Read *source* ahead in a background thread (see the module docs)."""

    def __init__(self, source, *, chunk_size: int = CHUNK_SIZE, depth: int = 3) -> None:
        super().__init__()
        self._source = source
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(depth):
            self._free.put(bytearray(chunk_size))
        self._ready: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._current: memoryview | None = None
        self._current_buf: bytearray | None = None
        self._done = False
        self._thread = threading.Thread(
            target=self._fill, name="readahead", daemon=True
        )
        self._thread.start()

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        readinto = getattr(self._source, "readinto", None)
        try:
            while not self._stop.is_set():
                buf = self._free.get()
                if self._stop.is_set():
                    return
                if readinto is not None:
                    n = readinto(buf)
                else:
                    data = self._source.read(len(buf))
                    n = len(data)
                    buf[:n] = data
                if not n:
                    self._ready.put(_EOF)
                    return
                self._ready.put((buf, n))
        except BaseException as exc:  # handed to the consumer, in stream order
            self._ready.put(exc)

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._done:
            return 0
        if self._current is None:
            item = self._ready.get()
            if item is _EOF:
                self._done = True
                return 0
            if isinstance(item, BaseException):
                self._done = True
                raise item
            self._current_buf, n = item
            self._current = memoryview(self._current_buf)[:n]
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._current))
        view[:n] = self._current[:n]
        self._current = self._current[n:]
        if not len(self._current):
            self._current = None
            if self._current_buf is not None:  # always set with _current
                self._free.put(self._current_buf)
            self._current_buf = None
        return n

    def close(self) -> None:
        if not self.closed:
            self._stop.set()
            self._free.put(bytearray(0))  # wake the thread if it waits for a buffer
            self._thread.join()
        super().close()
