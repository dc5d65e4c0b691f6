"""Helpers for the erasure-posix tests: build sets, break drives, rot bytes.

Tests run as root, so permission bits do not stop anything; a drive is made
unusable the way a dead disk looks to the filesystem instead: its directory
removed, or replaced by a file.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

from blobstore.backends.erasure import ErasureBackend
from blobstore.backends.erasure.layout import Drive

__all__ = [
    "break_drive",
    "corrupt_shard",
    "delete_shard",
    "make_set",
    "put_bytes",
    "read_back",
    "shard_drive",
]


def make_set(root: Path, drives: int, parity: int, **options) -> ErasureBackend:
    """A set of *drives* directories under *root* (drive i is root/d<i>)."""
    paths = [root / f"d{i}" for i in range(drives)]
    return ErasureBackend(paths, parity=parity, **options)


def put_bytes(backend: ErasureBackend, name: str, data: bytes) -> None:
    backend.put(name, io.BytesIO(data), len(data))


def read_back(backend: ErasureBackend, name: str) -> bytes:
    f, size = backend.open(name)
    with f:
        data = f.read()
    assert len(data) == size
    return data


def shard_drive(backend: ErasureBackend, name: str, shard_index: int) -> Drive:
    """The drive that holds shard *shard_index* of *name*."""
    return backend.drives[backend.layout.placement(name)[shard_index]]


def delete_shard(backend: ErasureBackend, name: str, shard_index: int) -> None:
    drive = shard_drive(backend, name, shard_index)
    drive.shard_path(name).unlink()


def corrupt_shard(
    backend: ErasureBackend, name: str, shard_index: int, offset: int = 0
) -> None:
    """Flip one byte of a shard file in place (bitrot: same size, new bytes)."""
    path = shard_drive(backend, name, shard_index).shard_path(name)
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def break_drive(drive: Drive, how: str) -> None:
    """Make a drive unusable: ``removed`` (directory gone) or ``file`` (the
    directory replaced by a plain file, as when a mount point is lost)."""
    shutil.rmtree(drive.path)
    if how == "file":
        drive.path.write_bytes(b"not a drive")
    else:
        assert how == "removed", how


def replace_drive(drive: Drive) -> None:
    """Put an empty directory where a broken drive was (a new disk)."""
    if drive.path.is_file():
        drive.path.unlink()
    os.makedirs(drive.path, exist_ok=True)
