"""The rules of native multipart uploads, apart from storage.

These are the reference implementation's checks (charmstore's
``checkPartInfo``), as pure functions over an upload's part list, so the
Store applies them both when a part arrives and again when the upload is
finished (parts that were each valid when uploaded concurrently may together
be too small or out of place).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from blobstore.errors import BadParams
from blobstore.records import PartInfo

__all__ = [
    "Limits",
    "check_parts",
    "infer_offset",
    "new_upload_id",
    "validate_part_args",
]


DEFAULT_MIN_PART_SIZE = 5 * 1024 * 1024
DEFAULT_MAX_PART_SIZE = 2**32 - 1
DEFAULT_MAX_PARTS = 400


@dataclass(frozen=True, slots=True)
class Limits:
    """Multipart limits; the defaults are the reference's."""

    min_part_size: int = DEFAULT_MIN_PART_SIZE
    max_part_size: int = DEFAULT_MAX_PART_SIZE
    max_parts: int = DEFAULT_MAX_PARTS


def new_upload_id() -> str:
    """16 URL-safe characters (96 random bits), the reference's id shape."""
    return secrets.token_urlsafe(12)


def validate_part_args(limits: Limits, part: int, size: int) -> None:
    """The checks that need no stored state, in the reference's order."""
    if part < 0:
        raise BadParams("negative part number")
    if part >= limits.max_parts:
        raise BadParams(f"part number {part} too big (maximum {limits.max_parts - 1})")
    if size <= 0:
        raise BadParams(f"non-positive part {part} size {size}")
    if size > limits.max_part_size:
        raise BadParams(f"part {part} too big (maximum {limits.max_part_size})")


def infer_offset(parts: Sequence[PartInfo | None], part: int) -> int:
    """The offset of *part* when the client did not say: right after the
    previous part (sequential uploads by old clients)."""
    if part == 0:
        return 0
    prev = parts[part - 1] if part - 1 < len(parts) else None
    if prev is None:
        raise BadParams("out-of-sequence part upload with no specified offset")
    return prev.offset + prev.size


def with_part(
    parts: Sequence[PartInfo | None], part: int, info: PartInfo
) -> list[PartInfo | None]:
    """*parts* with *info* slotted in at *part* (padding with gaps)."""
    slots = list(parts) + [None] * max(0, part + 1 - len(parts))
    slots[part] = info
    return slots


def check_parts(limits: Limits, parts: Sequence[PartInfo | None]) -> None:
    """Every part but the last must be big enough, and parts must be contiguous.

    A small part is accepted only while it is the highest-numbered one. Errors
    may name an earlier stored part rather than the one being uploaded.
    """
    last = len(parts) - 1
    for i, p in enumerate(parts):
        if p is None:
            continue
        if i < last and p.size < limits.min_part_size:
            raise BadParams(
                f"part {i} too small (need at least {limits.min_part_size} bytes, "
                f"got {p.size})"
            )
        if i == 0:
            want = 0
        elif (prev := parts[i - 1]) is not None:
            want = prev.offset + prev.size
        else:
            continue
        if p.offset != want:
            raise BadParams(f"part {i} should start at {want} not at {p.offset}")
