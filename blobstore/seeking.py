"""Where a seek lands: the one ``io`` seek arithmetic every reader shares.

Blob readers (plain and composite), the erasure, Swift and GridFS backend
readers and the read cache's readers are all seekable ``io.RawIOBase``
streams of a known size; they differ in how they fetch bytes, not in what
``seek(offset, whence)`` means.
"""

from __future__ import annotations

import io

__all__ = ["seek_position"]


def seek_position(pos: int, size: int, offset: int, whence: int) -> int:
    """The new position of a stream of *size* bytes at *pos* after
    ``seek(offset, whence)``. Past the end is allowed (``io`` semantics:
    reads there return ``b""``).

    :raises ValueError: an unknown *whence*, or a negative position.
    """
    if whence == io.SEEK_SET:
        new = offset
    elif whence == io.SEEK_CUR:
        new = pos + offset
    elif whence == io.SEEK_END:
        new = size + offset
    else:
        raise ValueError(f"invalid whence {whence!r}")
    if new < 0:
        raise ValueError(f"negative seek position {new}")
    return new
