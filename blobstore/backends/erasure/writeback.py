"""Start writing a file's dirty pages to disk while it is still being written.

A put writes the whole blob into the page cache and then fsyncs it: with
nothing written back yet, the fsync at the end waits for the entire blob
(about half a second per GiB on these disks), after all the hashing is
done. :class:`Writeback` asks the kernel, every few MiB, to *start* writing
back what was written so far (``sync_file_range(SYNC_FILE_RANGE_WRITE)``:
asynchronous, it does not wait), so the disk works while the put is still
reading and hashing and the final fsync has little left to do.

This changes nothing about durability: the fsync before the rename still
decides when a shard counts. ``sync_file_range`` exists only on Linux; it is
called through ctypes (the ``os`` module does not have it), and where it is
missing, or fails, writeback is left to the kernel as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable

__all__ = ["WINDOW", "Writeback"]

#: Bytes between two writeback requests.
WINDOW = 8 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2


def _load() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load()


class Writeback:
    """Tracks how much of a file was written and kicks off writeback of each
    full :data:`WINDOW` (call :meth:`wrote` after every write)."""

    def __init__(self, fd: int, window: int = WINDOW) -> None:
        self._fd = fd
        self._window = window
        self._written = 0
        self._started = 0  # bytes already handed to writeback
        self._sync = _sync_file_range
        self.enabled = self._sync is not None

    def wrote(self, n: int) -> None:
        self._written += n
        if self._sync is None or not self.enabled:
            return
        if self._written - self._started < self._window:
            return
        length = self._written - self._started
        if self._sync(self._fd, self._started, length, _SYNC_FILE_RANGE_WRITE):
            # Unsupported here (or a file system that refuses it): stop
            # asking; the fsync at the end still writes everything.
            self.enabled = False
            return
        self._started = self._written
