"""The HTTP ``Range`` header (RFC 9110 §14): the one parser both façades use.

The native API and S3 serve one byte range per request. A header this
parser cannot serve -- malformed, another unit, several ranges -- is ignored
as RFC 9110 allows (the whole entity, 200), which is also what S3 does; a
valid range wholly past the end raises :class:`RangeNotSatisfiable`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ByteRange", "RangeNotSatisfiable", "parse_range"]


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start`` to ``end`` inclusive of a ``size``-byte entity."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


class RangeNotSatisfiable(Exception):
    """The Range header is valid but selects no byte of the entity; each
    façade answers it its own way (a JSON 416, S3's ``InvalidRange``)."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range *header* asks for, or None to send everything.

    Per RFC 9110 §14.2 a server may ignore a Range header it does not
    support: a malformed one, another unit, or several ranges get the whole
    blob (200), which every client accepts.

    :raises RangeNotSatisfiable: a valid range that lies beyond the end.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not first:  # suffix: the last N bytes
        if not _digits(last):
            return None
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(0, size - n), size - 1, size)
    if not _digits(first) or (last and not _digits(last)):
        return None
    start = int(first)
    if last and int(last) < start:
        return None  # invalid, hence ignored
    if start >= size:
        raise RangeNotSatisfiable
    end = min(int(last), size - 1) if last else size - 1
    return ByteRange(start, end, size)


def _digits(text: str) -> bool:
    # RFC 9110's DIGIT is ASCII: "¹".isdigit() is true, but int("¹") fails.
    return text.isascii() and text.isdigit()
