"""Seekable readers of blobs, with Python ``io`` semantics.

:class:`BlobReader` wraps one backend object; :class:`CompositeReader` reads a
composite blob (a finished multipart upload) across its parts, opening each
part only when the position reaches it. Both are ``io.RawIOBase`` objects:
``seek`` follows the ``io`` rules (``SEEK_END`` with a negative offset,
seeking past the end is allowed and reads nothing there, a negative position
is an error), and both know the blob's ``size`` and ``hash``.
:class:`Window` reads a byte range of either (HTTP ranges, S3 part copies).
"""

from __future__ import annotations

import bisect
import io
import itertools
from collections.abc import Callable
from typing import BinaryIO

from blobstore.errors import BlobStoreError
from blobstore.errors import Corrupt
from blobstore.records import MultipartIndex
from blobstore.seeking import seek_position

__all__ = ["BlobReader", "CompositeReader", "Window"]


class BlobReader(io.RawIOBase):
    """A plain blob: one backend object.

    ``fileno()`` is the backend file's when it has one, so a WSGI server can
    ``sendfile`` it.
    """

    def __init__(self, stream: BinaryIO, size: int, hash: str) -> None:
        super().__init__()
        self._stream = stream
        self.size = size
        self.hash = hash

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._stream.fileno()

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = self._stream.readinto(buffer)
        return 0 if n is None else n

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        new = seek_position(self._stream.tell(), self.size, offset, whence)
        return self._stream.seek(new)

    def tell(self) -> int:
        return self._stream.tell()

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


class CompositeReader(io.RawIOBase):
    """A composite blob: its parts read in order, as one stream.

    :param open_part: opens a part by hash (the Store's ``open``), so a part
        may itself be plain or composite.
    :param prefetch: called with the hash of part *k+1* when part *k* is
        opened, so a caching backend can fetch it while *k* is read (a hint:
        it must return at once and never raise).

    A read fills the buffer across part boundaries; a missing part surfaces as
    the :class:`~blobstore.errors.BlobNotFound` its ``open`` raises.
    """

    def __init__(
        self,
        index: MultipartIndex,
        hash: str | None,
        open_part: Callable[[str], io.RawIOBase],
        prefetch: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self._index = index
        self._open_part = open_part
        self._prefetch = prefetch
        self._ends = list(itertools.accumulate(index.sizes))
        self.size = self._ends[-1] if self._ends else 0
        self.hash = hash
        self._pos = 0
        self._part_no = -1
        self._part: io.RawIOBase | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = seek_position(self._pos, self.size, offset, whence)
        return self._pos  # lazy: the part is found on the next read

    def tell(self) -> int:
        return self._pos

    def _select(self, pos: int) -> tuple[io.RawIOBase, int]:
        """Open the part holding *pos*; return it and the bytes left in it."""
        n = bisect.bisect_right(self._ends, pos)
        start = self._ends[n - 1] if n else 0
        if n != self._part_no:
            self._close_part()
            self._part = self._open_part(self._index.hashes[n])
            self._part_no = n
            if self._prefetch is not None and n + 1 < len(self._index):
                self._prefetch(self._index.hashes[n + 1])
        part = self._part
        if part is None:  # set just above whenever the part changes
            raise BlobStoreError(f"composite reader lost its part {n}")
        if part.tell() != pos - start:
            part.seek(pos - start)
        return part, self._ends[n] - pos

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view) and self._pos < self.size:
            part, left = self._select(self._pos)
            want = min(left, len(view) - filled)
            n = part.readinto(view[filled : filled + want]) or 0
            if n == 0:
                raise Corrupt(
                    f"part {self._part_no} ({self._index.hashes[self._part_no]}) "
                    "is shorter than its index says"
                )
            filled += n
            self._pos += n
        return filled

    def _close_part(self) -> None:
        if self._part is not None:
            self._part.close()
            self._part = None
            self._part_no = -1

    def close(self) -> None:
        self._close_part()
        super().close()


class Window(io.RawIOBase):
    """At most *length* bytes of a seekable *reader*, starting at *first*.

    Closing the window closes *reader*.
    """

    def __init__(self, reader: io.RawIOBase, first: int, length: int) -> None:
        super().__init__()
        reader.seek(first)
        self._reader = reader
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._left)
        if want == 0:
            return 0
        n = self._reader.readinto(view[:want]) or 0
        self._left -= n
        return n

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
        super().close()
