"""Temp files that a sweeper can tell apart from a crashed writer's leftovers.

Every temp file is held under an exclusive ``flock`` by the process writing
it, from creation until it has been renamed away or unlinked. The kernel
drops the lock when that process dies, so a sweeper removes exactly the temp
files nobody holds: a crashed write's leftovers, never another worker's write
in progress (gunicorn workers start and restart at different times, each
cleaning at start).

Between ``open(O_CREAT)`` and ``flock`` there is a moment when a new file is
unlocked; a sweeper that wins that race unlinks it *while holding the lock*,
and the writer, once it has the lock, sees that its path no longer names its
file and starts over with a new name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from pathlib import Path

__all__ = ["create", "fsync_dir", "probe", "sweep"]


def create(directory: Path, prefix: str) -> tuple[int, Path]:
    """A new, locked, empty temp file in *directory*: its fd and path.

    :raises OSError: the directory cannot take a new file.
    """
    while True:
        path = directory / f"{prefix}.{secrets.token_hex(8)}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd, path
        except FileNotFoundError:
            pass  # swept in the moment before we locked it: try again
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def sweep(directory: Path) -> int:
    """Remove the temp files in *directory* that no live process holds.

    Returns how many were removed. Errors on single entries are ignored: the
    next sweep tries again.
    """
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            # Nothing here makes directories; one can only be a stray.
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            # Gone already, or a symlink (O_NOFOLLOW): unlink the name itself.
            with contextlib.suppress(OSError):
                if os.path.islink(entry.path):
                    os.unlink(entry.path)
                    removed += 1
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a live writer holds it
        try:
            if os.stat(entry.path).st_ino == os.fstat(fd).st_ino:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def probe(directory: Path) -> None:
    """Raise OSError unless a file can be created, written and removed here."""
    fd, path = create(directory, ".probe")
    try:
        os.write(fd, b"probe")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make the entries of directory *path* (renames, links) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
