"""Reading shards: find a blob's intact shards and decode only what is read.

:func:`gather` opens the shard and meta file of *name* on every drive and
keeps those of one write (the ``write_id`` most drives agree on) whose
metadata is sound. Holding the files open means a concurrent remove (a
rename into the trash) cannot pull the bytes from under a reader.

:class:`ErasureReader` is the seekable stream ``open()`` returns. It decodes
one block at a time, when a read reaches it, from k fragments whose checksums
match -- data shards first, since decoding them is cheapest. A fragment that
cannot be read or fails its checksum is skipped, the damage is reported
through a callback so the blob can be healed, and the next shard is tried.
A shard that failed to read is not tried again by this reader; one with a
bad checksum is, after the others, since bitrot hits single blocks. When
fewer than k good fragments of a block remain, the read raises
:class:`~blobstore.errors.ReadQuorumError`: never wrong bytes.

With one drive and no parity (k = 1, m = 0) the shard file *is* the blob, so
the reader exposes its ``fileno()`` and keeps the file offset at the logical
position: a WSGI server can ``sendfile`` from it (skipping checksum checks,
which only ever turn bad bytes into an error when there is no parity).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections import Counter
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

from blobstore.backends.erasure.codec import Codec
from blobstore.backends.erasure.layout import Drive
from blobstore.backends.erasure.layout import Layout
from blobstore.backends.erasure.meta import ShardMeta
from blobstore.backends.erasure.meta import checksum
from blobstore.backends.erasure.meta import read_checksum
from blobstore.backends.erasure.meta import read_meta
from blobstore.errors import BlobNotFound
from blobstore.errors import ReadQuorumError
from blobstore.seeking import seek_position

__all__ = ["ErasureReader", "OpenShard", "ShardSet", "gather"]

#: Called with (drive, shard index, what is wrong) when a shard is damaged.
OnDamage = Callable[[Drive, int, str], None]


@dataclass(slots=True)
class OpenShard:
    """One drive's shard of a blob: open shard and meta files."""

    drive: Drive
    meta: ShardMeta
    fd: int
    meta_fd: int

    def close(self) -> None:
        for fd in (self.fd, self.meta_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def fragment(self, block: int) -> tuple[bytes | None, str]:
        """The verified fragment of *block*, or None and what is wrong."""
        offset, length = self.meta.fragment_span(block)
        try:
            data = os.pread(self.fd, length, offset)
            want = read_checksum(self.meta_fd, block)
        except OSError as exc:
            return None, f"read error in block {block}: {exc.strerror or exc}"
        if len(data) != length:
            return None, f"shard truncated in block {block}"
        if checksum(data) != want:
            return None, f"checksum mismatch in block {block}"
        return data, ""


@dataclass
class ShardSet:
    """The intact shards of one write of a blob, by shard index."""

    name: str
    meta: ShardMeta
    shards: dict[int, OpenShard]
    #: Shard index -> why its drive has no usable shard (missing, offline,
    #: damaged metadata, another write's shard).
    missing: dict[int, str] = field(default_factory=dict)

    def close(self) -> None:
        for shard in self.shards.values():
            shard.close()
        self.shards = {}


def _open_shard(name: str, drive: Drive) -> OpenShard:
    """Open *drive*'s shard of *name* (raises FileNotFoundError, OSError or
    ValueError for damaged metadata)."""
    fd = os.open(drive.shard_path(name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        meta_fd = os.open(drive.meta_path(name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        os.close(fd)
        raise ValueError("shard without metadata") from None
    except BaseException:
        os.close(fd)
        raise
    try:
        meta = read_meta(meta_fd)
        if os.fstat(fd).st_size != meta.shard_size:
            raise ValueError(
                f"shard is {os.fstat(fd).st_size} bytes, expected {meta.shard_size}"
            )
    except BaseException:
        os.close(fd)
        os.close(meta_fd)
        raise
    return OpenShard(drive, meta, fd, meta_fd)


def gather(name: str, drives: Sequence[Drive], layout: Layout) -> ShardSet:
    """Open the shards of *name*.

    :raises BlobNotFound: no drive has it, and too few drives are unreachable
        for a readable copy to hide on them.
    :raises ReadQuorumError: fewer than k intact shards were found.
    """
    placement = layout.placement(name)
    index_of = {d: j for j, d in enumerate(placement)}
    found: list[OpenShard] = []
    problems: dict[int, str] = {}
    not_found = 0
    for drive in drives:
        j = index_of[drive.index]
        try:
            shard = _open_shard(name, drive)
        except FileNotFoundError:
            try:
                drive.check_online()
            except OSError as exc:  # the drive itself is gone
                problems[j] = f"drive {drive.path} offline: {exc.strerror or exc}"
            else:
                not_found += 1
                problems[j] = f"no shard on {drive.path}"
            continue
        except OSError as exc:
            problems[j] = f"drive {drive.path} unreadable: {exc.strerror or exc}"
            continue
        except ValueError as exc:
            problems[j] = f"damaged shard on {drive.path}: {exc}"
            continue
        if shard.meta.shard_index != j or shard.meta.k + shard.meta.m != layout.drives:
            problems[j] = f"shard on {drive.path} does not fit this set's layout"
            shard.close()
            continue
        found.append(shard)
    # One write's shards only: the write most drives agree on.
    votes = Counter(s.meta.write_id for s in found)
    chosen = votes.most_common(1)[0][0] if votes else None
    shards: dict[int, OpenShard] = {}
    for shard in found:
        if shard.meta.write_id == chosen:
            shards[shard.meta.shard_index] = shard
        else:
            problems[shard.meta.shard_index] = (
                f"shard on {shard.drive.path} is from another write"
            )
            shard.close()
    if not shards:
        k = layout.data
        if not_found > layout.drives - k:
            raise BlobNotFound(f"backend object {name!r} not found")
        raise ReadQuorumError(
            f"read quorum not met for {name!r}: no intact shard found, "
            f"{k} needed ({'; '.join(problems.values())})"
        )
    meta = next(iter(shards.values())).meta
    if len(shards) < meta.k:
        detail = "; ".join(problems.values())
        for shard in shards.values():
            shard.close()
        raise ReadQuorumError(
            f"read quorum not met for {name!r}: {len(shards)} intact shards, "
            f"{meta.k} needed ({detail})"
        )
    return ShardSet(name, meta, shards, problems)


class ErasureReader(io.RawIOBase):
    """A seekable, lazy reader of one blob. See the module docs."""

    def __init__(self, shards: ShardSet, codec: Codec, on_damage: OnDamage) -> None:
        super().__init__()
        self._set = shards
        self._meta = shards.meta
        self._codec = codec
        self._on_damage = on_damage
        self.size = shards.meta.size
        self._pos = 0
        self._suspect: set[int] = set()  # shards with a checksum mismatch
        self._unreadable: set[int] = set()  # shards that failed to read
        self._block_no = -1
        self._block = b""
        self._passthrough: int | None = None
        if self._meta.k == 1 and self._meta.m == 0:
            self._passthrough = shards.shards[0].fd

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        if self._passthrough is None:
            raise io.UnsupportedOperation("an erasure-coded blob has no single file")
        return self._passthrough

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        new = seek_position(self._pos, self.size, offset, whence)
        self._pos = new
        self._sync_offset()
        return new

    def readinto(self, buffer) -> int:  # type: ignore[override]
        self._check_open()
        view = memoryview(buffer).cast("B")
        got = 0
        while got < len(view) and self._pos < self.size:
            block_no, start = divmod(self._pos, self._meta.block_size)
            block = self._get_block(block_no)
            n = min(len(view) - got, len(block) - start)
            view[got : got + n] = block[start : start + n]
            got += n
            self._pos += n
        self._sync_offset()
        return got

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        buf = bytearray(min(size, max(0, self.size - self._pos)))
        n = self.readinto(buf)
        del buf[n:]
        return bytes(buf)

    def readall(self) -> bytes:
        return self.read(max(0, self.size - self._pos))

    def close(self) -> None:
        if not self.closed:
            self._set.close()
            self._block = b""
        super().close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def _sync_offset(self) -> None:
        # sendfile() starts at the file offset; keep it where we are.
        if self._passthrough is not None:
            os.lseek(self._passthrough, self._pos, os.SEEK_SET)

    def _get_block(self, block_no: int) -> bytes:
        if block_no == self._block_no:
            return self._block
        meta = self._meta
        fragments: dict[int, bytes] = {}
        # Data shards (0..k-1) first: decoding them is cheapest. Shards with
        # a bad block come last but are still tried: bitrot is per block.
        order = sorted(self._set.shards, key=lambda j: (j in self._suspect, j))
        for j in order:
            if len(fragments) == meta.k:
                break
            if j in self._unreadable:
                continue
            shard = self._set.shards[j]
            data, problem = shard.fragment(block_no)
            if data is None:
                if problem.startswith("checksum"):
                    if j not in self._suspect:
                        self._on_damage(shard.drive, j, problem)
                    self._suspect.add(j)
                else:  # an I/O error or a short file: give up on the shard
                    self._unreadable.add(j)
                    self._on_damage(shard.drive, j, problem)
                continue
            fragments[j] = data
        if len(fragments) < meta.k:
            raise ReadQuorumError(
                f"read quorum not met for {self._set.name!r} at block {block_no}: "
                f"{len(fragments)} intact fragments, {meta.k} needed"
            )
        self._block = self._codec.decode(fragments, meta.block_len(block_no))
        self._block_no = block_no
        return self._block
