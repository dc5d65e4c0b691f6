"""A plain local-directory backend.

Layout under ``path``::

    objects/<first two characters of name>/<name>   committed objects
    tmp/<random>                                    writes in progress

A put writes a temp file in ``tmp/`` (same filesystem), fsyncs it, renames it
into ``objects/`` and fsyncs the directory: an object is either whole under
its name or not there at all, even across a crash. Leftover temp files are
removed at start. Readers get a real file object, so the HTTP layer can serve
it with ``sendfile``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from blobstore.backends.base import Backend
from blobstore.backends.base import ObjectInfo
from blobstore.backends.base import check_name
from blobstore.errors import BlobNotFound
from blobstore.errors import InsufficientStorage
from blobstore.errors import Unavailable
from blobstore.hashing import CHUNK_SIZE
from blobstore.hashing import Readable

__all__ = ["LocalBackend"]


class LocalBackend(Backend):
    """Objects as files in one directory tree."""

    type_name = "local"

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(path)
        self._objects = self.root / "objects"
        self._tmp = self.root / "tmp"
        self._fsync = fsync
        try:
            self._objects.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Unavailable(
                f"cannot create backend directory {self.root}: {exc}"
            ) from exc
        self._clean_tmp()

    def _clean_tmp(self) -> None:
        # Anything in tmp/ is a write that never committed (a crash): drop it.
        for entry in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                entry.unlink()

    def _path(self, name: str) -> Path:
        check_name(name)
        return self._objects / name[:2] / name

    def put(self, name: str, stream: Readable, size: int | None = None) -> None:
        target = self._path(name)
        try:
            fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix=name[:16] + ".")
        except OSError as exc:
            raise _os_error(exc, self._tmp) from exc
        try:
            with open(fd, "wb", closefd=True) as out:
                # Errors reading the stream (a bad hash, a client that went
                # away) propagate as they are; errors writing are ours.
                _copy(stream, out, target)
                with _disk_errors(target):
                    out.flush()
                    if self._fsync:
                        os.fsync(out.fileno())
            with _disk_errors(target):
                target.parent.mkdir(exist_ok=True)
                os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        if self._fsync:
            with _disk_errors(target):
                _fsync_dir(target.parent)

    def open(self, name: str) -> tuple[BinaryIO, int]:
        path = self._path(name)
        try:
            f = open(path, "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise BlobNotFound(f"backend object {name!r} not found") from None
        except OSError as exc:
            raise _os_error(exc, path) from exc
        return f, os.fstat(f.fileno()).st_size

    def remove(self, name: str) -> None:
        path = self._path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _os_error(exc, path) from exc

    def list(self) -> Iterator[ObjectInfo]:
        for fan in sorted(self._objects.iterdir()):
            if not fan.is_dir():
                continue
            for entry in os.scandir(fan):
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue  # removed while listing
                yield ObjectInfo(
                    entry.name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)
                )

    def check(self) -> None:
        if not os.access(self._objects, os.W_OK):
            raise Unavailable(f"backend directory {self._objects} is not writable")

    def stats(self) -> dict[str, object]:
        st = os.statvfs(self.root)
        return {
            "path": str(self.root),
            "free_bytes": st.f_bavail * st.f_frsize,
            "total_bytes": st.f_blocks * st.f_frsize,
        }


def _copy(stream: Readable, out: BinaryIO, target: Path) -> None:
    """Copy *stream* to *out* through one reused buffer (no per-chunk allocation)."""
    readinto = getattr(stream, "readinto", None)
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    while True:
        if readinto is not None:
            n = readinto(view)
            chunk = view[:n]
        else:
            chunk = stream.read(CHUNK_SIZE)
            n = len(chunk)
        if not n:
            return
        with _disk_errors(target):
            out.write(chunk)


@contextlib.contextmanager
def _disk_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise _os_error(exc, path) from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_error(exc: OSError, path: Path) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage(f"no space left for {path}: {exc.strerror}")
    return Unavailable(f"cannot access {path}: {exc.strerror or exc}")
