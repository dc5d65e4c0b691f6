"""The erasure set's shape, its drives, and the format file that binds them.

Each drive is one directory (normally the mount point of one disk)::

    <drive>/format.json                  which deployment and set this drive is in
    <drive>/objects/<fan>/<name>         this drive's shard of blob <name>
    <drive>/objects/<fan>/<name>.meta    its metadata and block checksums
    <drive>/tmp/                         writes in progress (locked temp files)
    <drive>/trash/                       removed shards waiting to be purged

``<fan>`` is the first two characters of the name, so no directory grows
huge. Backend names never contain a dot, so ``.meta`` cannot clash.

The format file is what makes a directory a member of a set: it holds the
deployment id, the set's layout (drive count and parity) and the drive's
position. At start every configured drive is checked against it, so a drive
from another deployment, a set with a different layout or a reordered drive
list is refused instead of mixing two data sets. Drives without a format file
(a new set, or a replaced disk) are given one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blobstore.backends.erasure import tmpfiles
from blobstore.errors import BadParams
from blobstore.errors import DriveMismatch
from blobstore.errors import Unavailable

__all__ = ["FORMAT_FILE", "Drive", "Layout", "open_drives"]

FORMAT_FILE = "format.json"
FORMAT_NAME = "blobstore-erasure-posix"
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Layout:
    """N drives, m of them parity: each blob is k = N - m data + m parity shards."""

    drives: int
    parity: int

    def __post_init__(self) -> None:
        if self.drives < 1:
            raise BadParams("an erasure set needs at least one drive")
        if not 0 <= self.parity <= self.drives // 2:
            raise BadParams(
                f"parity must be between 0 and half the drives "
                f"(0..{self.drives // 2} for {self.drives} drives), not {self.parity}"
            )

    @property
    def data(self) -> int:
        """k, the number of shards any read needs."""
        return self.drives - self.parity

    @property
    def write_quorum(self) -> int:
        """Drives that must commit a write: k, plus one on an even split.

        With k == m, two halves of the set could each hold k shards of two
        different writes; the extra drive makes any two quorums overlap.
        """
        return self.data + (1 if self.data == self.parity else 0)

    def placement(self, name: str) -> list[int]:
        """The drive index of each shard index of *name*.

        Rotated by a hash of the name, so the data shards (which reads prefer)
        spread over all drives instead of always landing on the first k.
        """
        start = zlib.crc32(name.encode()) % self.drives
        return [(start + j) % self.drives for j in range(self.drives)]

    def as_dict(self) -> dict[str, int]:
        return {"drives": self.drives, "parity": self.parity}


class Drive:
    """One directory of the set, and the paths of things on it."""

    def __init__(self, index: int, path: Path, deployment_id: str) -> None:
        self.index = index
        self.path = path
        self.deployment_id = deployment_id
        self.objects = path / "objects"
        self.tmp = path / "tmp"
        self.trash = path / "trash"
        self.locks = path / "locks"
        self.format_file = path / FORMAT_FILE
        self._format_id: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"Drive({self.index}, {str(self.path)!r})"

    def shard_path(self, name: str) -> Path:
        return self.objects / name[:2] / name

    def meta_path(self, name: str) -> Path:
        return self.objects / name[:2] / f"{name}.meta"

    def check_online(self) -> None:
        """Raise OSError unless this directory is still this drive of the set.

        A disk that fell out (unmounted, replaced, its directory gone or
        turned into a file) must not silently take shards on whatever
        filesystem is now under the path, so every write checks that the
        format file is still the one this drive was opened with.
        """
        st = os.stat(self.format_file)
        if (st.st_dev, st.st_ino) == self._format_id:
            return
        try:
            found = read_format(self.format_file)
        except DriveMismatch as exc:
            raise OSError(errno.ENODEV, str(exc)) from exc
        if (
            found is None
            or found.get("deployment_id") != self.deployment_id
            or found.get("drive_index") != self.index
        ):
            raise OSError(errno.ENODEV, "format file belongs to another drive")
        self._format_id = (st.st_dev, st.st_ino)

    def prepare(self) -> None:
        """Create the working directories (the drive is known to be formatted)."""
        for sub in (self.objects, self.tmp, self.trash, self.locks):
            sub.mkdir(exist_ok=True)
        st = os.stat(self.format_file)
        self._format_id = (st.st_dev, st.st_ino)


def read_format(path: Path) -> dict[str, Any] | None:
    """The parsed format file, or None when there is none."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise DriveMismatch(f"{path} is not a blobstore erasure-set format file")
    if data.get("version") != FORMAT_VERSION:
        raise DriveMismatch(
            f"{path} has format version {data.get('version')!r}; "
            f"this blobstore reads version {FORMAT_VERSION}"
        )
    return data


def _write_format_if_absent(path: Path, content: dict[str, Any]) -> bool:
    """Create the format file atomically; False if one appeared meanwhile.

    Linking a complete, fsynced temp file into place (instead of renaming)
    fails when the name exists, so two processes starting a fresh set at the
    same time cannot both win: the loser adopts the winner's deployment id.
    """
    tmp_dir = path.parent / "tmp"
    tmp_dir.mkdir(exist_ok=True)
    fd, tmp = tmpfiles.create(tmp_dir, "format")
    try:
        os.write(fd, (json.dumps(content, indent=2) + "\n").encode())
        os.fsync(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        tmpfiles.fsync_dir(path.parent)
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        os.close(fd)


def _check_unformatted(path: Path) -> None:
    """Refuse to adopt a directory that holds shards but no format file."""
    objects = path / "objects"
    with contextlib.suppress(FileNotFoundError):
        if any(True for _ in objects.iterdir()):
            raise DriveMismatch(
                f"drive {path} holds objects but has no {FORMAT_FILE}; refusing to "
                "adopt data of unknown origin (restore the format file or move the "
                "data away)"
            )


def _check_format(found: dict[str, Any], path: Path, index: int, layout: Layout):
    if found.get("layout") != layout.as_dict():
        theirs = found.get("layout") or {}
        raise DriveMismatch(
            f"drive {path} belongs to a set of {theirs.get('drives')} drives with "
            f"parity {theirs.get('parity')}; the configuration says "
            f"{layout.drives} drives with parity {layout.parity}"
        )
    if found.get("drive_index") != index:
        raise DriveMismatch(
            f"drive {path} is drive {found.get('drive_index')} of its set but is "
            f"configured as drive {index} (was the drive list reordered?)"
        )


def _format_content(deployment_id: str, index: int, layout: Layout) -> dict:
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "deployment_id": deployment_id,
        "drive_index": index,
        "layout": layout.as_dict(),
    }


def _check_formats(
    paths: list[Path], formats: list[dict[str, Any] | None], layout: Layout
) -> str | None:
    """Check every drive's format; returns the set's deployment id, if any."""
    ids = {f["deployment_id"] for f in formats if f is not None}
    if len(ids) > 1:
        owners = ", ".join(
            f"{p} -> {f['deployment_id']}"
            for p, f in zip(paths, formats, strict=True)
            if f is not None
        )
        raise DriveMismatch(f"drives belong to different deployments: {owners}")
    for i, (path, found) in enumerate(zip(paths, formats, strict=True)):
        if found is not None:
            _check_format(found, path, i, layout)
        else:
            _check_unformatted(path)
    return ids.pop() if ids else None


def _format_missing(
    paths: list[Path],
    formats: list[dict[str, Any] | None],
    deployment_id: str,
    layout: Layout,
) -> bool:
    """Format the drives that have no format file; False if we lost a race."""
    for i, (path, found) in enumerate(zip(paths, formats, strict=True)):
        if found is None:
            content = _format_content(deployment_id, i, layout)
            try:
                created = _write_format_if_absent(path / FORMAT_FILE, content)
            except OSError as exc:
                raise Unavailable(f"drive {path} is not writable: {exc}") from exc
            if not created:
                return False
    return True


def open_drives(paths: list[Path], layout: Layout) -> list[Drive]:
    """Validate the configured drives against their format files, formatting
    the ones that have none, and return them ready for use.

    :raises DriveMismatch: a drive belongs to another deployment, another
        layout or another position, or holds unformatted data.
    :raises Unavailable: a drive cannot be created or written.
    """
    if len(paths) != layout.drives:
        raise BadParams(f"{len(paths)} drive paths for a set of {layout.drives}")
    resolved = [os.path.realpath(p) for p in paths]
    if len(set(resolved)) != len(resolved):
        raise BadParams(f"the same directory is listed twice in drives {paths}")
    for path in paths:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"cannot create drive directory {path}: {exc}") from exc
    # Two rounds at most: a second one only when another process formatted a
    # drive between our read and our write.
    for _ in range(2):
        formats = [read_format(p / FORMAT_FILE) for p in paths]
        deployment_id = _check_formats(paths, formats, layout) or uuid.uuid4().hex
        if _format_missing(paths, formats, deployment_id, layout):
            break
    else:  # pragma: no cover - needs three processes racing on one set
        raise Unavailable("the drives' format files keep changing; try again")
    drives = [Drive(i, p, deployment_id) for i, p in enumerate(paths)]
    for drive in drives:
        try:
            drive.prepare()
            tmpfiles.probe(drive.tmp)
        except OSError as exc:
            raise Unavailable(f"drive {drive.path} is not writable: {exc}") from exc
    return drives


def adopt_replaced(drive: Drive, layout: Layout) -> bool:
    """Format *drive* if it is an empty directory (a replaced disk).

    Returns True when the drive is usable afterwards. Used by healing, so
    that swapping a failed disk for an empty one and running heal rebuilds it.
    """
    try:
        drive.check_online()
        return True
    except OSError:
        pass
    try:
        if not drive.path.is_dir():
            return False
        if not drive.format_file.exists():
            _check_unformatted(drive.path)
            _write_format_if_absent(
                drive.format_file,
                _format_content(drive.deployment_id, drive.index, layout),
            )
        drive.prepare()
        drive.check_online()
    except (OSError, DriveMismatch):
        return False
    return True
