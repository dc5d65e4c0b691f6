"""Copying a remote object into the cache: fills on reads, tees on puts.

A :class:`Fill` is one object being copied from the remote into its locked
``tmp/<name>.fill`` file (see :mod:`~blobstore.backends.cache.layout`) by a
background thread, and the meeting point of every reader of that object in
this process: readers wait on :attr:`Fill.cond` for :attr:`Fill.written` to
grow. The fill verifies what it copied before it commits:

* exactly the size the remote announced (not one byte more or less),
* the blob's SHA-384, when the Store said which blob it is (``open_blob``),

and records a CRC-32 per block in the sidecar, which readers of the
committed copy check. Anything that goes wrong abandons the fill: the temp
file goes, nothing is committed, and readers learn why (see
:class:`~blobstore.backends.cache.readers.TailReader`).

:class:`PutTee` keeps a copy of what a put sends to the remote.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import threading

from blobstore.backends.cache.layout import BlockSummer
from blobstore.backends.cache.layout import Layout
from blobstore.backends.cache.metrics import Counters
from blobstore.errors import Corrupt
from blobstore.hashing import CHUNK_SIZE
from blobstore.hashing import Readable

__all__ = ["Fill", "FillState", "PutTee", "readinto"]

log = logging.getLogger(__name__)


class FillState(enum.Enum):
    OPENING = "opening"  # the leader is opening the remote object
    RUNNING = "running"  # copying; readers follow it
    DONE = "done"  # committed: the copy is in objects/
    FAILED = "failed"  # abandoned (see Fill.error)
    BYPASS = "bypass"  # not cached (too big, full, filled elsewhere)


class BadContent(Corrupt):
    """The remote's bytes are not what they must be (size or hash)."""


class Cancelled(Exception):
    """The fill was stopped (the object was removed, or the cache closed)."""


class Fill:
    """One object being copied into the cache (see the module docs).

    Every field is guarded by :attr:`cond`. ``fd`` is the locked fill file
    while RUNNING (-1 otherwise); readers take a ``dup`` of it under ``cond``,
    which is also held while the fill commits or abandons, so they never dup
    a descriptor that is being closed.
    """

    def __init__(self, name: str, hash: str | None) -> None:
        self.name = name
        self.hash = hash
        self.cond = threading.Condition()
        self.state = FillState.OPENING
        self.size = -1
        self.written = 0
        self.fd = -1
        self.error: BaseException | None = None
        self.bad_content = False
        self.cancelled = False
        self.thread: threading.Thread | None = None

    def set_state(self, state: FillState, error: BaseException | None = None) -> None:
        with self.cond:
            self.state = state
            self.error = error
            self.cond.notify_all()

    def start(self, fd: int, size: int) -> int:
        """Enter RUNNING with the locked fill file; return a dup of it for the
        leader's own reader (taken before the copy can finish and close it)."""
        with self.cond:
            self.fd = fd
            self.size = size
            self.state = FillState.RUNNING
            self.cond.notify_all()
            return os.dup(fd)

    def join(self) -> int | None:
        """A dup of the fill file for a new reader, or None unless RUNNING."""
        with self.cond:
            if self.state is not FillState.RUNNING:
                return None
            return os.dup(self.fd)

    def cancel(self) -> None:
        with self.cond:
            self.cancelled = True

    def run(self, stream, layout: Layout, counters: Counters) -> bool:
        """Copy *stream* (the remote object, at 0) in; True if committed.

        Runs in the fill's thread; always ends in DONE or FAILED and closes
        *stream*.
        """
        sha = hashlib.sha384() if self.hash is not None else None
        summer = BlockSummer(sha=sha)
        try:
            try:
                self._copy(stream, summer, counters)
            finally:
                stream.close()
            if sha is not None and sha.hexdigest() != self.hash:
                raise BadContent(
                    f"remote object {self.name!r} does not hold blob {self.hash} "
                    f"(its SHA-384 is {sha.hexdigest()})"
                )
            meta = summer.meta(self.hash)
            with self.cond:
                if self.cancelled:
                    raise Cancelled()
                layout.commit_fill(self.name, self.fd, meta)
                self.fd = -1
                self.state = FillState.DONE
                self.cond.notify_all()
            return True
        except BaseException as exc:
            self.abort(layout, exc)
            if not isinstance(exc, Exception):
                raise
            return False

    def abort(self, layout: Layout, exc: BaseException) -> None:
        """Abandon the fill: remove its file, tell its readers why."""
        with self.cond:
            if self.fd >= 0:
                layout.abandon_fill(self.name, self.fd)
                self.fd = -1
            self.state = FillState.FAILED
            self.error = exc
            self.bad_content = isinstance(exc, BadContent)
            self.cond.notify_all()
        if not isinstance(exc, Cancelled):
            log.warning("cache fill of %s abandoned: %s", self.name, exc)

    def _copy(self, stream, summer: BlockSummer, counters: Counters) -> None:
        buf = bytearray(CHUNK_SIZE)
        view = memoryview(buf)
        while self.written < self.size:
            if self.cancelled:
                raise Cancelled()
            want = min(len(view), self.size - self.written)
            n = readinto(stream, view[:want])
            if n == 0:
                raise BadContent(
                    f"remote object {self.name!r} ended after {self.written} "
                    f"of {self.size} bytes"
                )
            chunk = view[:n]
            counters.add("remote_bytes", n)
            summer.update(chunk)
            _pwrite_all(self.fd, chunk, self.written)
            with self.cond:
                self.written += n
                self.cond.notify_all()
        if stream.read(1):
            raise BadContent(
                f"remote object {self.name!r} is longer than its size {self.size}"
            )


class PutTee:
    """A put's stream, read by the remote backend, copied into a fill file.

    The remote sees exactly the source's bytes and exceptions. Cache trouble
    (a full or failing cache disk, more than *limit* bytes) only drops the
    copy: it never fails the put. :attr:`complete` tells whether the source
    was read to its end (so whatever verification it does has passed).
    """

    def __init__(self, source: Readable, fd: int, limit: int) -> None:
        self._source = source
        self._fd = fd
        self._limit = limit
        self._summer = BlockSummer()
        self.complete = False
        self.dropped = False

    @property
    def count(self) -> int:
        return self._summer.count

    def meta(self):
        return self._summer.meta()

    def read(self, n: int = -1) -> bytes:
        data = self._source.read(n)
        if data:
            self._keep(memoryview(data))
        elif n != 0:
            self.complete = True
        return data

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        n = readinto(self._source, view)
        if n:
            self._keep(view[:n])
        elif len(view):
            self.complete = True
        return n

    def _keep(self, chunk: memoryview) -> None:
        if self.dropped:
            return
        if self._summer.count + len(chunk) > self._limit:
            self.dropped = True
            return
        try:
            _pwrite_all(self._fd, chunk, self._summer.count)
        except OSError as exc:
            log.warning("cache copy of a put dropped: %s", exc)
            self.dropped = True
            return
        self._summer.update(chunk)


def readinto(stream, view: memoryview) -> int:
    """``stream.readinto(view)``, or ``read`` for streams that lack it."""
    method = getattr(stream, "readinto", None)
    if method is not None:
        return method(view) or 0
    data = stream.read(len(view))
    view[: len(data)] = data
    return len(data)


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        n = os.pwrite(fd, data, offset)
        data = data[n:]
        offset += n
