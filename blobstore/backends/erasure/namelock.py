"""Mutual exclusion of heal and remove for one object name.

A remove trashes an object's shards drive by drive; a heal that gathered the
shards on drives the remove had not reached yet could commit rebuilt shards
onto drives it had already passed, and the object would come back. So heal
and remove of the same name take this lock: an exclusive ``flock`` on a
striped lock file (``locks/<first two characters of the name>``) on every
online drive, always in drive order (no deadlock). Both sides lock every
drive they can open, so any drive online for both excludes them; ``flock``
works between threads (separate open files) and between processes (the
server's workers, a ``blobstore gc`` or ``heal`` job). Writes need no lock:
every put has a fresh name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from collections.abc import Sequence

from blobstore.backends.erasure.layout import Drive

__all__ = ["name_lock"]


@contextlib.contextmanager
def name_lock(drives: Sequence[Drive], name: str) -> Iterator[None]:
    """Hold the lock of *name* (see the module docstring)."""
    held: list[int] = []
    try:
        for drive in drives:
            try:
                fd = os.open(drive.locks / name[:2], os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                continue  # an offline drive: the others still exclude
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:
                os.close(fd)
                continue
            held.append(fd)
        yield
    finally:
        for fd in reversed(held):
            os.close(fd)  # closing the file releases its lock
