"""The integrity checksums S3 clients send: ``x-amz-checksum-*`` and MD5.

Each algorithm is a factory of objects with ``update(bytes)`` and
``digest() -> bytes``; clients send the digest base64-encoded (CRCs as 4
big-endian bytes). CRC32C comes from the ``crc32c`` package (hardware
accelerated where the CPU has it).

``crc64nvme`` is not verified: no maintained pure-Python-installable
implementation is a dependency here, so :func:`algorithm` returns None for it
and the value is accepted unchecked (the SHA-384 of the content is still
computed and the MD5 ETag still returned).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Callable
from typing import Protocol

import crc32c

__all__ = [
    "ALGORITHMS",
    "Digest",
    "algorithm",
    "decode_b64",
]


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc:
    """A running CRC over a function ``f(data, previous) -> crc``."""

    def __init__(self, function: Callable[[bytes, int], int]) -> None:
        self._function = function
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = self._function(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


def _crc32c(data: bytes, value: int) -> int:
    return crc32c.crc32c(data, value)


#: name (as in ``x-amz-checksum-<name>``) → (factory, digest size in bytes)
ALGORITHMS: dict[str, tuple[Callable[[], Digest], int]] = {
    "crc32": (lambda: _Crc(zlib.crc32), 4),
    "crc32c": (lambda: _Crc(_crc32c), 4),
    "sha1": (hashlib.sha1, 20),
    "sha256": (hashlib.sha256, 32),
}

#: Known to S3, accepted, not verified (see the module docstring).
UNVERIFIED = frozenset({"crc64nvme"})


def algorithm(name: str) -> tuple[Callable[[], Digest], int] | None:
    """The factory and digest size for checksum *name* (lowercase), or None."""
    return ALGORITHMS.get(name)


def decode_b64(value: str, size: int) -> bytes | None:
    """*value* base64-decoded if it decodes strictly to *size* bytes, else None."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None
