"""The readers :class:`~blobstore.backends.cache.CacheBackend` hands out.

All three are seekable ``io.RawIOBase`` streams with Python ``io`` seek rules
whose ``read(n)`` returns *n* bytes unless the object ends first (like a
buffered file, which is what callers of ``Backend.open`` get elsewhere):

* :class:`CachedReader` serves a committed copy, verifying each block's CRC
  before handing its bytes out. A damaged block drops the copy and the reader
  carries on from the remote, at the same position: bad bytes are never
  served.
* :class:`TailReader` follows a fill in progress: it reads what the fill has
  written and waits for more. A reader that seeks further than ``window``
  bytes past the fill reads the remote directly (ranged reads) until the fill
  catches up, so a range request never waits for a download. The last byte of
  a fill is handed out only after the fill was verified, so a reader that
  took everything from the cache file either got content that matched or
  gets :class:`~blobstore.errors.Corrupt`.
* :class:`RemoteReader` is the remote stream, counted (objects the cache does
  not keep).
"""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Callable
from typing import BinaryIO

from blobstore.backends.cache.fill import Fill
from blobstore.backends.cache.fill import FillState
from blobstore.backends.cache.fill import readinto
from blobstore.backends.cache.layout import Meta
from blobstore.backends.cache.metrics import Counters
from blobstore.errors import Corrupt
from blobstore.seeking import seek_position

__all__ = ["CachedReader", "RemoteCursor", "RemoteReader", "TailReader"]

Opener = Callable[[], tuple[BinaryIO, int]]


class _Reader(io.RawIOBase):
    """Position, size and seeking; subclasses read with ``_read_at``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()  # type: ignore[attr-defined]
        self._pos = seek_position(self._pos, self.size, offset, whence)
        return self._pos

    def tell(self) -> int:
        self._checkClosed()  # type: ignore[attr-defined]
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[override]
        self._checkClosed()  # type: ignore[attr-defined]
        view = memoryview(buffer).cast("B")
        n = 0
        while n < len(view) and self._pos < self.size:
            want = min(len(view) - n, self.size - self._pos)
            got = self._read_at(self._pos, view[n : n + want])
            n += got
            self._pos += got
        return n

    def readall(self) -> bytes:
        # RawIOBase.readall reads 8 KiB at a time; the size is known.
        out = bytearray(max(self.size - self._pos, 0))
        n = self.readinto(out)
        del out[n:]
        return bytes(out)

    def _read_at(self, pos: int, view: memoryview) -> int:
        """Read into *view* (non-empty, within the object) at *pos*; > 0."""
        raise NotImplementedError


class RemoteCursor:
    """Reads the remote object at any position, opening it on first use.

    :param opener: opens the remote object (``remote.open(name)``).
    :param stream: an already open remote stream positioned at 0, if any.
    """

    def __init__(
        self,
        name: str,
        size: int,
        opener: Opener,
        counters: Counters,
        stream: BinaryIO | None = None,
    ) -> None:
        self._name = name
        self._size = size
        self._opener = opener
        self._counters = counters
        self._stream = stream
        self._pos = 0

    def read_at(self, pos: int, view: memoryview) -> int:
        if self._stream is None:
            stream, size = self._opener()
            if size != self._size:
                stream.close()
                raise Corrupt(
                    f"remote object {self._name!r} changed size "
                    f"({self._size} bytes, now {size})"
                )
            self._stream = stream
            self._pos = 0
        if self._pos != pos:
            self._stream.seek(pos)
            self._pos = pos
        n = readinto(self._stream, view)
        if n == 0:
            raise Corrupt(
                f"remote object {self._name!r} ended after {pos} of {self._size} bytes"
            )
        self._pos += n
        self._counters.add("remote_bytes", n)
        return n

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class RemoteReader(_Reader):
    """A remote object the cache does not keep, counted."""

    def __init__(self, cursor: RemoteCursor, size: int) -> None:
        super().__init__(size)
        self._cursor = cursor

    def _read_at(self, pos: int, view: memoryview) -> int:
        return self._cursor.read_at(pos, view)

    def close(self) -> None:
        if not self.closed:
            self._cursor.close()
        super().close()


class CachedReader(_Reader):
    """A committed copy, verified block by block (see the module docs).

    :param fd: the open data file (the reader owns it).
    :param on_corrupt: called once, with the file's inode, when a block does
        not match its CRC (or the file is short): drops the copy.
    """

    def __init__(
        self,
        fd: int,
        meta: Meta,
        remote: RemoteCursor,
        counters: Counters,
        on_corrupt: Callable[[int], None],
    ) -> None:
        super().__init__(meta.size)
        self._fd = fd
        self._meta = meta
        self._remote = remote
        self._counters = counters
        self._on_corrupt = on_corrupt
        self._damaged = False
        self._buf = bytearray(min(meta.block_size, meta.size))
        self._buf_block = -1

    def _read_at(self, pos: int, view: memoryview) -> int:
        if self._damaged:
            return self._remote.read_at(pos, view)
        bs = self._meta.block_size
        block, offset = divmod(pos, bs)
        start = block * bs
        length = min(bs, self.size - start)
        if offset == 0 and len(view) >= length and block != self._buf_block:
            # A whole block: straight into the caller's buffer, no copy.
            dst = view[:length]
            if not self._load(block, start, dst):
                return self._remote.read_at(pos, view)
            n = length
        else:
            if block != self._buf_block:
                self._buf_block = -1
                if not self._load(block, start, memoryview(self._buf)[:length]):
                    return self._remote.read_at(pos, view)
                self._buf_block = block
            n = min(len(view), length - offset)
            view[:n] = self._buf[offset : offset + n]
        self._counters.add("cache_bytes", n)
        return n

    def _load(self, block: int, start: int, dst: memoryview) -> bool:
        """Read and verify one block into *dst*; False if it is damaged."""
        got = 0
        while got < len(dst):
            k = os.preadv(self._fd, [dst[got:]], start + got)
            if k == 0:
                break
            got += k
        if got == len(dst) and zlib.crc32(dst) == self._meta.crcs[block]:
            return True
        self._damaged = True
        self._on_corrupt(os.fstat(self._fd).st_ino)
        return False

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
            self._remote.close()
        super().close()


class TailReader(_Reader):
    """Follows a fill in progress (see the module docs).

    :param fd: a duplicate of the fill's file descriptor (the reader owns it).
    :param window: how far past the fill a reader may be and still wait for
        it rather than read the remote directly.
    """

    def __init__(
        self,
        fill: Fill,
        fd: int,
        remote: RemoteCursor,
        counters: Counters,
        window: int,
    ) -> None:
        super().__init__(fill.size)
        self._fill = fill
        self._fd = fd
        self._remote = remote
        self._counters = counters
        self._window = window

    def _read_at(self, pos: int, view: memoryview) -> int:
        ready = self._wait(pos)
        if not ready:
            return self._remote.read_at(pos, view)
        n = os.preadv(self._fd, [view[: min(len(view), ready)]], pos)
        if n == 0:  # cannot happen unless someone truncated our temp file
            raise Corrupt(f"cache fill of {self._fill.name!r} lost its data")
        self._counters.add("cache_bytes", n)
        return n

    def _wait(self, pos: int) -> int:
        """Bytes readable from the fill file at *pos*, once there are some;
        0 to read the remote instead."""
        fill = self._fill
        with fill.cond:
            while True:
                if fill.state is FillState.FAILED:
                    if fill.bad_content:
                        raise Corrupt(str(fill.error))
                    return 0  # the fill stopped; the remote may still answer
                # Hold the last byte back until the content is verified.
                done = fill.state is FillState.DONE
                visible = fill.written if done else min(fill.written, self.size - 1)
                if pos < visible:
                    return visible - pos
                if pos - fill.written > self._window:
                    return 0
                fill.cond.wait()

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
            self._remote.close()
        super().close()
