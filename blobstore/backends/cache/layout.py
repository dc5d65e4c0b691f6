"""The cache directory on disk, shared by every process that uses it.

Layout under the cache ``path``::

    objects/<name[:2]>/<name>        a committed copy of remote object <name>
    objects/<name[:2]>/<name>.meta   its sidecar (:class:`Meta`): size, CRCs
    tmp/<name>.fill                  a fill in progress, and <name>'s fill lock
    tmp/<name>.meta                  the sidecar of that fill, being written
    evict.lock                       flock'ed by the process that is evicting

The rules that keep several processes (gunicorn workers) safe on one
directory, without any shared memory:

* **One fill per name.** A filler opens ``tmp/<name>.fill`` and takes an
  exclusive, non-blocking ``flock`` on it; whoever fails to get it knows a
  fill is in progress elsewhere. The lock lives as long as the holder's file
  descriptor, so a crashed process never leaves a stale lock, and a leftover
  file whose lock can be taken is garbage.
* **Commit = rename.** A fill writes its data into the locked file, renames
  the sidecar into ``objects/`` and then the data file: the data file's
  appearance is the commit point, and it always has its sidecar before it.
* **Deletion (eviction, drops) needs no lock**: data first, then sidecar. A
  commit racing a deletion can at worst leave data without a sidecar, which
  readers treat as a miss and remove. Readers hold an open descriptor, so an
  entry deleted under a reader keeps serving that reader.
* Nothing here is fsync'ed: a cache copy lost or torn in a crash is detected
  by its size and block CRCs and fetched again, which is cheaper than paying
  for durability on every fill.
"""

from __future__ import annotations

import array
import base64
import contextlib
import errno
import fcntl
import json
import os
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from blobstore.backends.base import check_name

__all__ = ["BLOCK_SIZE", "Entry", "Layout", "Meta"]

#: CRC block size: reads are verified a block at a time, so this is also the
#: read buffer of a cached reader. Small enough for many concurrent readers,
#: big enough that the sidecar of a 256 MiB object is 4 KiB of CRCs.
BLOCK_SIZE = 256 * 1024

_META_VERSION = 1
if array.array("I").itemsize != 4:  # the CRC sidecar is 32-bit entries
    raise ImportError("the read cache needs a platform with 4-byte unsigned ints")


@dataclass(frozen=True, slots=True)
class Meta:
    """A cached copy's sidecar: what the copy must look like to be served.

    :param crcs: the CRC-32 of each ``block_size`` block of the data (the
        last block may be short), computed while the bytes came in.
    :param sha384: the content's SHA-384 when the fill verified it against the
        blob's hash (fills through :meth:`Backend.open_blob`), else None.
    """

    size: int
    block_size: int
    crcs: array.array
    sha384: str | None = None

    def to_bytes(self) -> bytes:
        crcs = array.array("I", self.crcs)
        if sys.byteorder == "big":
            crcs.byteswap()
        return json.dumps(
            {
                "v": _META_VERSION,
                "size": self.size,
                "block_size": self.block_size,
                "sha384": self.sha384,
                "crc32": base64.b64encode(crcs.tobytes()).decode(),
            }
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Meta:
        """Parse a sidecar; raise ValueError if it is not a consistent one."""
        try:
            doc = json.loads(data)
            size, block = doc["size"], doc["block_size"]
            sha = doc["sha384"]
            crcs = array.array("I")
            crcs.frombytes(base64.b64decode(doc["crc32"], validate=True))
        except (KeyError, TypeError, ValueError) as exc:  # incl. JSON, base64
            raise ValueError(f"unreadable sidecar: {exc}") from None
        if sys.byteorder == "big":
            crcs.byteswap()
        if (
            doc.get("v") != _META_VERSION
            or not isinstance(size, int)
            or not isinstance(block, int)
            or size < 0
            or block <= 0
            or len(crcs) != -(-size // block)
            or (sha is not None and not isinstance(sha, str))
        ):
            raise ValueError("inconsistent sidecar")
        return cls(size, block, crcs, sha)


class BlockSummer:
    """CRC-32 per block (and optionally SHA-384) of a stream fed in chunks."""

    def __init__(self, block_size: int = BLOCK_SIZE, sha=None) -> None:
        self.block_size = block_size
        self.crcs = array.array("I")
        self.sha = sha
        self.count = 0
        self._crc = 0
        self._in_block = 0

    def update(self, data: memoryview | bytes) -> None:
        if self.sha is not None:
            self.sha.update(data)
        view = memoryview(data)
        while view:
            take = min(len(view), self.block_size - self._in_block)
            self._crc = zlib.crc32(view[:take], self._crc)
            self._in_block += take
            view = view[take:]
            if self._in_block == self.block_size:
                self.crcs.append(self._crc)
                self._crc = self._in_block = 0
        self.count += len(data)

    def meta(self, sha384: str | None = None) -> Meta:
        crcs = array.array("I", self.crcs)
        if self._in_block:
            crcs.append(self._crc)
        return Meta(self.count, self.block_size, crcs, sha384)


@dataclass(frozen=True, slots=True)
class Entry:
    """A committed copy found by :meth:`Layout.scan`."""

    name: str
    size: int
    mtime_ns: int


class Layout:
    """Paths, fill locks, commits, deletions and scans of one cache directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def data_path(self, name: str) -> Path:
        return self.objects / name[:2] / name

    def meta_path(self, name: str) -> Path:
        return self.objects / name[:2] / (name + ".meta")

    def fill_path(self, name: str) -> Path:
        return self.tmp / (name + ".fill")

    # -- fills -----------------------------------------------------------

    def lock_fill(self, name: str) -> int | None:
        """Take *name*'s fill lock; return the (empty) fill file's descriptor,
        or None if another fill of *name* holds it.

        The descriptor is opened read-write: the filler writes the data into
        it, and readers of the fill read it through duplicates.
        """
        path = self.fill_path(name)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            # The holder we waited on may have renamed (committed) or
            # unlinked the file before we locked it: then we hold a lock on
            # an inode that is no longer tmp/<name>.fill. Try again.
            try:
                st = os.stat(path)
            except FileNotFoundError:
                os.close(fd)
                continue
            own = os.fstat(fd)
            if (st.st_ino, st.st_dev) != (own.st_ino, own.st_dev):
                os.close(fd)
                continue
            os.ftruncate(fd, 0)  # a crashed filler's leftover is ours now
            return fd

    def abandon_fill(self, name: str, fd: int) -> None:
        """Drop a fill: remove its files, then release the lock."""
        # Unlink while still holding the lock, so nobody can lock the inode
        # we are about to let go of and think it is tmp/<name>.fill.
        # A failing disk must not stop the lock being released: suppress.
        with contextlib.suppress(OSError):
            os.unlink(self.tmp / (name + ".meta"))
        with contextlib.suppress(OSError):
            os.unlink(self.fill_path(name))
        os.close(fd)

    def commit_fill(self, name: str, fd: int, meta: Meta) -> None:
        """Make a finished fill visible: sidecar first, then the data.

        Raises OSError if the cache disk fails; the caller then abandons.
        """
        meta_tmp = self.tmp / (name + ".meta")
        with open(meta_tmp, "wb") as f:
            f.write(meta.to_bytes())
        fan = self.objects / name[:2]
        fan.mkdir(exist_ok=True)
        os.replace(meta_tmp, self.meta_path(name))
        os.replace(self.fill_path(name), self.data_path(name))
        os.close(fd)  # releases the lock; a new locker sees the committed copy

    def committed(self, name: str) -> bool:
        return self.data_path(name).exists()

    # -- reads and deletions ---------------------------------------------

    def read_meta(self, name: str) -> Meta | None:
        """The sidecar of *name*, or None if it is missing or unreadable."""
        try:
            data = self.meta_path(name).read_bytes()
        except FileNotFoundError:
            return None
        try:
            return Meta.from_bytes(data)
        except ValueError:
            return None

    def delete(self, name: str, only_inode: int | None = None) -> int:
        """Delete *name*'s copy (data first, then sidecar); return its size,
        or -1 if there was none (or it is not *only_inode* any more: another
        process replaced it after we looked)."""
        path = self.data_path(name)
        try:
            st = os.stat(path)
            if only_inode is not None and st.st_ino != only_inode:
                return -1
            os.unlink(path)
        except FileNotFoundError:
            size = -1
        else:
            size = st.st_size
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.meta_path(name))
        return size

    # -- maintenance -------------------------------------------------------

    def sweep_tmp(self) -> int:
        """Remove what crashed fills left in ``tmp/``; return how many files.

        A fill file whose lock we can take has no live filler; fills of live
        processes (another worker of a shared directory) are left alone.
        """
        removed = 0
        for entry in os.scandir(self.tmp):
            base, dot, suffix = entry.name.rpartition(".")
            if dot and suffix in ("fill", "meta") and _plausible(base):
                if suffix == "meta" and os.path.exists(self.fill_path(base)):
                    continue  # goes with its fill file, below or by its owner
                fd = self.lock_fill(base)
                if fd is None:
                    continue
                self.abandon_fill(base, fd)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            removed += 1
        return removed

    def scan(self) -> Iterator[Entry]:
        """Yield every committed copy; clean up broken ones on the way.

        A data file without a sidecar, or one whose size disagrees with its
        sidecar, is deleted; a sidecar without data is deleted unless a fill
        of that name is committing it right now.
        """
        for fan in _scandir(self.objects):
            if not fan.is_dir(follow_symlinks=False):
                continue
            for entry in _scandir(fan.path):
                name = entry.name
                if name.endswith(".meta"):
                    self._check_orphan_meta(name[: -len(".meta")])
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                meta = self.read_meta(name)
                if meta is None or meta.size != st.st_size:
                    self.delete(name, st.st_ino)
                    continue
                yield Entry(name, st.st_size, st.st_mtime_ns)

    def _check_orphan_meta(self, name: str) -> None:
        if not _plausible(name) or self.committed(name):
            return
        fd = self.lock_fill(name)
        if fd is None:
            return  # a fill of it is running: its sidecar, committing now
        try:
            if not self.committed(name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.meta_path(name))
        finally:
            self.abandon_fill(name, fd)

    def lock_eviction(self) -> int | None:
        """Take the directory's eviction lock (non-blocking), or None."""
        fd = os.open(self.root / "evict.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def free_bytes(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize


def _plausible(name: str) -> bool:
    """Whether a file name found on disk is a backend name we could have made."""
    try:
        check_name(name)
    except ValueError:
        return False
    return True


def _scandir(path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except FileNotFoundError:
        return []
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            return []
        raise
