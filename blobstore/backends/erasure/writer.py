"""Writing shards: stream, encode, checksum, then commit with a quorum.

A put streams the blob through one reused block buffer. Each block is encoded
into k + m fragments; fragment *j* is appended to a locked temp file in
``tmp/`` of the drive that holds shard *j*, and its checksum goes into the
temp meta file. When the stream ends, every drive fsyncs its two files,
renames the meta file and then the shard file into ``objects/`` (the shard's
rename is the commit point on that drive: a meta without a shard is not an
object) and fsyncs the directory.

The write counts when at least the write quorum of drives committed. A drive
that fails on the way is dropped and the write goes on while a quorum is
left; with too few, everything written is removed again and the put fails
with :class:`~blobstore.errors.WriteQuorumError` (or
:class:`~blobstore.errors.InsufficientStorage` when disks were full). If
reading the stream raises, nothing is left behind and the error propagates.
A crash at any point leaves locked-then-orphaned temp files (swept at start)
and at most a set of committed shards from an all-or-nothing rename per drive.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from blobstore.backends.erasure import tmpfiles
from blobstore.backends.erasure.codec import Codec
from blobstore.backends.erasure.layout import Drive
from blobstore.backends.erasure.meta import CHECKSUM_SIZE
from blobstore.backends.erasure.meta import HEADER_SIZE
from blobstore.backends.erasure.meta import ShardMeta
from blobstore.backends.erasure.meta import checksum
from blobstore.backends.erasure.writeback import Writeback
from blobstore.errors import BlobStoreError
from blobstore.errors import InsufficientStorage
from blobstore.errors import WriteQuorumError
from blobstore.hashing import Readable

__all__ = ["ShardSink", "quorum_failure", "write_all", "write_blob"]

#: Runs a function on each item, in parallel where it helps; returns, per
#: item, the result or the OSError it raised.
Parallel = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]

_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """os.write until everything is written (writes may be short)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class ShardSink:
    """One drive's side of a write (or of a rebuild by healing)."""

    def __init__(self, drive: Drive, shard_index: int) -> None:
        self.drive = drive
        self.shard_index = shard_index
        self.error: OSError | None = None
        self.committed = False
        self._fd = self._meta_fd = -1
        self._tmp: str | None = None
        self._meta_tmp: str | None = None
        self._placed: list[Path] = []
        self._writeback: Writeback | None = None

    @property
    def live(self) -> bool:
        return self.error is None

    def open(self, name: str, *, writeback: bool = True) -> None:
        """Create the temp files; with *writeback*, start writing the shard
        to disk while it is written (see :mod:`.writeback`), worth it when
        it will be fsynced."""
        try:
            self.drive.check_online()
            self._fd, tmp = tmpfiles.create(self.drive.tmp, name[:24])
            self._tmp = str(tmp)
            if writeback:
                self._writeback = Writeback(self._fd)
            self._meta_fd, meta_tmp = tmpfiles.create(self.drive.tmp, name[:24])
            self._meta_tmp = str(meta_tmp)
        except OSError as exc:
            self.fail(exc)

    def write(self, block: int, fragment: bytes | memoryview, digest: bytes) -> None:
        try:
            write_all(self._fd, fragment)
            os.pwrite(self._meta_fd, digest, HEADER_SIZE + block * CHECKSUM_SIZE)
            if self._writeback is not None:
                self._writeback.wrote(len(fragment))
        except OSError as exc:
            self.fail(exc)

    def commit(self, name: str, meta: ShardMeta, fsync: bool) -> None:
        """Make the shard durable and visible on this drive.

        On an OSError whatever was already renamed into place is removed
        again, so the drive holds the shard whole or not at all.
        """
        try:
            self._commit(name, meta, fsync)
        except OSError:
            self.undo()
            raise

    def _commit(self, name: str, meta: ShardMeta, fsync: bool) -> None:
        os.pwrite(self._meta_fd, meta.header(), 0)
        if fsync:
            os.fsync(self._fd)
            os.fsync(self._meta_fd)
        shard_path = self.drive.shard_path(name)
        meta_path = self.drive.meta_path(name)
        fan = shard_path.parent
        try:
            os.mkdir(fan)
        except FileExistsError:
            pass
        else:
            if fsync:
                tmpfiles.fsync_dir(fan.parent)
        if self._tmp is None or self._meta_tmp is None:
            raise BlobStoreError(f"shard writer on {self.drive} committed twice")
        os.replace(self._meta_tmp, meta_path)
        self._meta_tmp = None
        self._placed.append(meta_path)
        # The shard's rename is the commit point on this drive.
        os.replace(self._tmp, shard_path)
        self._tmp = None
        self._placed.append(shard_path)
        if fsync:
            tmpfiles.fsync_dir(fan)
        self.committed = True
        self._close()

    def fail(self, exc: OSError) -> None:
        """Drop this drive from the write, removing what it holds."""
        if self.error is None:
            self.error = exc
        self.discard()

    def discard(self) -> None:
        for path in (self._tmp, self._meta_tmp):
            if path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        self._tmp = self._meta_tmp = None
        self._close()

    def undo(self) -> None:
        """Remove what this sink renamed into place (the write failed)."""
        # Shard first: once it is gone the drive no longer holds the object.
        for path in reversed(self._placed):
            with contextlib.suppress(OSError):
                os.unlink(path)
        self._placed.clear()
        self.committed = False

    def _close(self) -> None:
        # Closing drops the flock, so close only once the temp names are gone.
        for fd in (self._fd, self._meta_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._meta_fd = -1


def quorum_failure(
    what: str, sinks: Sequence[ShardSink], have: int, need: int
) -> Exception:
    """The error for a write or rebuild that ended with too few drives."""
    failed = [s for s in sinks if s.error is not None]
    detail = "; ".join(f"{s.drive.path}: {s.error}" for s in failed)
    if any(s.error is not None and s.error.errno in _FULL_ERRNOS for s in failed):
        return InsufficientStorage(
            f"no space left to {what} ({have} of {need} drives): {detail}"
        )
    return WriteQuorumError(
        f"write quorum not met to {what}: {have} of {need} drives took it ({detail})"
    )


def _fill(stream: Readable, view: memoryview) -> int:
    """Read until *view* is full or the stream ends; returns the byte count."""
    readinto = getattr(stream, "readinto", None)
    got = 0
    while got < len(view):
        if readinto is not None:
            n = readinto(view[got:]) or 0
        else:
            chunk = stream.read(len(view) - got)
            n = len(chunk)
            view[got : got + n] = chunk
        if n == 0:
            break
        got += n
    return got


def write_blob(
    name: str,
    stream: Readable,
    *,
    drives: Sequence[Drive],
    placement: Sequence[int],
    codec: Codec,
    block_size: int,
    write_quorum: int,
    fsync: bool,
    parallel: Parallel,
) -> list[ShardSink]:
    """Store *stream* as shards of *name*; returns the sinks (to find which
    drives missed the write). See the module docs for the guarantees."""
    sinks = [ShardSink(drives[placement[j]], j) for j in range(len(drives))]
    try:
        for sink in sinks:
            sink.open(name, writeback=fsync)
        _check_quorum(name, sinks, write_quorum)
        buf = bytearray(block_size)
        view = memoryview(buf)
        size = blocks = 0
        fragment_size = last_fragment_size = 0
        while True:
            n = _fill(stream, view)
            if n == 0:
                break
            fragments = codec.encode(view[:n])
            if blocks == 0:
                fragment_size = len(fragments[0])
            last_fragment_size = len(fragments[0])
            for sink in sinks:
                if sink.live:
                    frag = fragments[sink.shard_index]
                    sink.write(blocks, frag, checksum(frag))
            _check_quorum(name, sinks, write_quorum)
            size += n
            blocks += 1
            if n < block_size:
                break
        meta = ShardMeta(
            write_id=secrets.token_hex(16),
            size=size,
            k=codec.k,
            m=codec.m,
            block_size=block_size,
            codec=codec.name,
            fragment_size=fragment_size,
            last_fragment_size=last_fragment_size,
            shard_index=0,
        )
        live = [s for s in sinks if s.live]
        results = parallel(
            lambda s: s.commit(name, meta.with_index(s.shard_index), fsync), live
        )
        for sink, result in zip(live, results, strict=True):
            if isinstance(result, OSError):
                sink.fail(result)
        committed = sum(1 for s in sinks if s.committed)
        if committed < write_quorum:
            for sink in sinks:
                sink.undo()
            raise quorum_failure(f"store {name}", sinks, committed, write_quorum)
        return sinks
    except BaseException:
        for sink in sinks:
            sink.discard()
        raise


def _check_quorum(name: str, sinks: Sequence[ShardSink], write_quorum: int) -> None:
    live = sum(1 for s in sinks if s.live)
    if live < write_quorum:
        raise quorum_failure(f"store {name}", sinks, live, write_quorum)
