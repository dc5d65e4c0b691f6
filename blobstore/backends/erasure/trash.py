"""Fast removes: rename into the drive's trash, purge in the background.

A remove is one rename per file per drive, however large the shard; freeing
the blocks happens later in a background thread (and at start, for what a
previous process left). The same thread also sweeps the temp areas of
leftovers from crashed writes (see :mod:`.tmpfiles`), so a long-running
process cleans up after a crashed neighbour without a restart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

from blobstore.backends.erasure import tmpfiles
from blobstore.backends.erasure.layout import Drive

__all__ = ["Purger", "move_to_trash", "purge"]

log = logging.getLogger(__name__)


def move_to_trash(drive: Drive, path: Path) -> bool:
    """Rename *path* into *drive*'s trash; False if there was nothing there.

    :raises OSError: the drive cannot be written.
    """
    target = drive.trash / f"{path.name}.{secrets.token_hex(6)}"
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return False
    return True


def purge(drive: Drive) -> int:
    """Delete everything in *drive*'s trash; returns how many entries."""
    removed = 0
    try:
        entries = list(os.scandir(drive.trash))
    except OSError:
        return 0  # drive offline: its trash waits
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed += 1
    return removed


class Purger:
    """A background thread that empties the trash and sweeps temp areas.

    It runs a cycle when :meth:`kick` is called (after a remove, and at start
    when the trash is not empty) and every *interval* seconds after that. It
    is started on first use in each process, so a backend built before a fork
    (gunicorn ``--preload``) gets one per worker.
    """

    def __init__(self, drives: Sequence[Drive], interval: float) -> None:
        self._drives = list(drives)
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._cycle = threading.Condition(self._lock)
        self._cycles = 0
        self._thread: threading.Thread | None = None
        self._pid = 0

    def kick(self) -> None:
        """Start a purge cycle soon (starting the thread if needed)."""
        with self._lock:
            if self._stop.is_set():
                return
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="blobstore-erasure-purger", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def wait_cycle(self, timeout: float) -> bool:
        """Wait until a cycle that starts after this call has finished."""
        with self._cycle:
            target = self._cycles + 2  # the one running now may predate us
        self.kick()
        with self._cycle:
            while self._cycles < target:
                self._wake.set()
                if not self._cycle.wait(timeout):
                    return False
            return True

    def run_once(self) -> int:
        """One cycle in the caller's thread; returns entries removed."""
        removed = 0
        for drive in self._drives:
            removed += purge(drive)
            with contextlib.suppress(OSError):
                removed += tmpfiles.sweep(drive.tmp)
        return removed

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if (
            thread is not None
            and thread is not threading.current_thread()
            and self._pid == os.getpid()  # a forked child has no thread to join
        ):
            thread.join()
        self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.run_once()
            except Exception:  # never let the thread die: log and go on
                log.exception("purging the erasure set's trash failed")
            with self._cycle:
                self._cycles += 1
                self._cycle.notify_all()
