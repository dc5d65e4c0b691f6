"""Benchmark content: large blobs that cost the client (almost) nothing.

A :class:`Content` of *size* bytes is one random 1 MiB block repeated, with
the first 16 bytes replaced by a per-blob tag, so every blob is new to the
store (no dedup between runs) while sending it is a ``sendall`` of the same
buffer over and over: the load generator spends its CPU in the kernel copy,
not in Python. Its SHA-384 is computed once, before any timing starts.

:class:`ContentFile` is the same content as a seekable file object, for
boto3 (which reads the body to checksum it, then seeks back and sends it).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zlib
from collections.abc import Iterator
from functools import cached_property

__all__ = ["BLOCK", "Content", "ContentFile"]

BLOCK = 1 << 20
_BASE = os.urandom(BLOCK)


class Content:
    """*size* bytes identified by *tag* (see the module docstring)."""

    def __init__(self, size: int, tag: str) -> None:
        self.size = size
        self.tag = tag
        head = hashlib.md5(tag.encode(), usedforsecurity=False).digest()
        first = bytearray(_BASE)
        first[: len(head)] = head
        self._first = bytes(first)

    def chunks(self) -> Iterator[memoryview]:
        """The content in blocks of at most 1 MiB (views, no copies)."""
        left = self.size
        block = memoryview(self._first)
        base = memoryview(_BASE)
        while left > 0:
            n = min(left, BLOCK)
            yield block[:n]
            block = base
            left -= n

    def block_at(self, index: int) -> memoryview:
        """The 1 MiB block number *index* (the last one may be shorter)."""
        start = index * BLOCK
        n = min(BLOCK, self.size - start)
        return memoryview(self._first if index == 0 else _BASE)[:n]

    @cached_property
    def crc32_b64(self) -> str:
        """The CRC32 as S3's ``x-amz-checksum-crc32`` (base64, big-endian)."""
        value = 0
        for chunk in self.chunks():
            value = zlib.crc32(chunk, value)
        return base64.b64encode(value.to_bytes(4, "big")).decode()

    @cached_property
    def sha384(self) -> str:
        h = hashlib.sha384()
        for chunk in self.chunks():
            h.update(chunk)
        return h.hexdigest()

    def part_sha384(self, start: int, length: int) -> str:
        """SHA-384 of a block-aligned slice (multipart parts)."""
        assert start % BLOCK == 0
        h = hashlib.sha384()
        for chunk in self.slice(start, length):
            h.update(chunk)
        return h.hexdigest()

    def slice(self, start: int, length: int) -> Iterator[memoryview]:
        """The bytes ``start .. start + length`` (block-aligned start)."""
        assert start % BLOCK == 0
        index = start // BLOCK
        while length > 0:
            block = self.block_at(index)[:length]
            yield block
            length -= len(block)
            index += 1

    def file(self) -> ContentFile:
        return ContentFile(self)


class ContentFile(io.RawIOBase):
    """The content as a seekable, read-only file object."""

    def __init__(self, content: Content) -> None:
        super().__init__()
        self._content = content
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}
        self._pos = max(0, base[whence] + offset)
        return self._pos

    @property
    def _size(self) -> int:
        return self._content.size

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._size:
            index, offset = divmod(self._pos, BLOCK)
            block = self._content.block_at(index)[offset:]
            n = min(len(block), len(view) - done)
            view[done : done + n] = block[:n]
            done += n
            self._pos += n
        return done

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._pos
        index, offset = divmod(self._pos, BLOCK)
        if self._pos < self._size and offset + size <= BLOCK:
            # Within one block (clients read 8-64 KiB at a time): one copy.
            data = bytes(self._content.block_at(index)[offset : offset + size])
            self._pos += len(data)
            return data
        buf = bytearray(max(0, min(size, self._size - self._pos)))
        n = self.readinto(buf)
        return bytes(buf[:n])

    def __len__(self) -> int:
        return self._size
