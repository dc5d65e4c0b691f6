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

The wait is bounded (``timeout``, 60 s by default): a holder that hangs (a
process frozen mid-remove, a remove stuck on a dying drive) must not hang
every later remove and heal of its stripe, on every node, for ever. The
waiter gets :class:`~blobstore.errors.Unavailable` naming the lock file; a
GC pass counts it as an error and leaves the object to the orphan sweep, a
heal retries the name on its next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path

from blobstore.backends.erasure.layout import Drive
from blobstore.errors import Unavailable

__all__ = ["LOCK_TIMEOUT", "name_lock"]

#: Seconds to wait for a name's lock before giving up.
LOCK_TIMEOUT = 60.0


@contextlib.contextmanager
def name_lock(
    drives: Sequence[Drive], name: str, timeout: float = LOCK_TIMEOUT
) -> Iterator[None]:
    """Hold the lock of *name* (see the module docstring).

    :raises Unavailable: another holder kept it for *timeout* seconds.
    """
    held: list[int] = []
    deadline = time.monotonic() + timeout
    try:
        for drive in drives:
            path = drive.locks / name[:2]
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                continue  # an offline drive: the others still exclude
            try:
                _flock(fd, path, name, deadline, timeout)
            except OSError:
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            held.append(fd)
        yield
    finally:
        for fd in reversed(held):
            os.close(fd)  # closing the file releases its lock


def _flock(fd: int, path: Path, name: str, deadline: float, timeout: float) -> None:
    """Take the exclusive flock on *fd* by *deadline*, polling: flock itself
    has no timeout, and a blocked flock cannot be interrupted from Python."""
    pause = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise Unavailable(
                    f"the lock of {name!r} ({path}) has been held by another "
                    f"remove or heal for {timeout:g}s"
                ) from None
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 0.05)
