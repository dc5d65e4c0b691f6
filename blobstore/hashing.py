"""Hash validation and the verifying reader every write goes through.

Content is addressed by lowercase hex SHA-384 (96 characters). A hash that is
not exactly that is rejected here, before it reaches a catalog or a backend,
which also keeps user input out of backend names and file paths.

:class:`VerifyingReader` wraps an input stream: it counts and hashes what
passes through it and, when the stream ends, checks the size and the hash the
caller declared. A failed check *raises from read()*, so a backend that is
copying the stream sees the error before it commits anything: the backend
contract is "if reading the stream raises, store nothing".

When it computes an MD5 as well (S3 ETags), each large chunk is hashed with
MD5 in a helper thread while this one computes the SHA-384: hashlib releases
the GIL on large buffers, so the two run on two cores and a put costs the
slower hash rather than their sum.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from blobstore.errors import BadParams
from blobstore.errors import BlobStoreError
from blobstore.errors import HashMismatch
from blobstore.errors import SizeMismatch

__all__ = [
    "CHUNK_SIZE",
    "EMPTY_HASH",
    "HASH_LENGTH",
    "Readable",
    "VerifyingReader",
    "check_hash",
    "hash_bytes",
    "hash_chunks",
]

#: Length of a hex SHA-384 digest.
HASH_LENGTH = 96
#: Size of the buffers used to copy streams: big enough that per-call
#: overhead vanishes next to hashing, small enough to keep memory flat.
CHUNK_SIZE = 1 << 20

_HASH_RE = re.compile(r"[0-9a-f]{96}")

#: Chunks at least this big have their MD5 computed in a helper thread;
#: below it, handing the chunk over costs more than it saves.
PARALLEL_MIN = 64 * 1024

_helpers: ThreadPoolExecutor | None = None
_helpers_pid = 0
_helpers_lock = threading.Lock()


def _helper_pool() -> ThreadPoolExecutor:
    """The process's pool of hashing helpers (made again after a fork:
    a forked child has the pool object but none of its threads)."""
    global _helpers, _helpers_pid
    pid = os.getpid()
    if _helpers is None or _helpers_pid != pid:
        with _helpers_lock:
            if _helpers is None or _helpers_pid != pid:
                _helpers = ThreadPoolExecutor(
                    max_workers=os.cpu_count() or 2, thread_name_prefix="md5"
                )
                _helpers_pid = pid
    return _helpers


class Readable(Protocol):
    """Anything with a ``read(n)`` method returning bytes."""

    def read(self, size: int = -1, /) -> bytes: ...


def check_hash(value: object) -> str:
    """Return *value* if it is a lowercase hex SHA-384, else raise BadParams."""
    if not isinstance(value, str) or not _HASH_RE.fullmatch(value):
        raise BadParams(f"implausible hash {value!r}")
    return value


def hash_bytes(data: bytes) -> str:
    """The hex SHA-384 of *data*."""
    return hashlib.sha384(data).hexdigest()


def hash_chunks(chunks: Iterable[bytes]) -> str:
    """The hex SHA-384 of the concatenation of *chunks*."""
    h = hashlib.sha384()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


EMPTY_HASH = hash_bytes(b"")


class VerifyingReader(io.RawIOBase):
    """A read-only stream that hashes and counts, and verifies at the end.

    :param stream: the source; anything with ``read`` (``readinto`` is used
        when it has one, to avoid a copy).
    :param size: the declared size, or None when unknown. With a size, exactly
        that many bytes are read; a source that ends early raises
        :class:`SizeMismatch`, and so does one that has more bytes after that.
    :param expected_hash: the declared SHA-384, or None. A different digest
        raises :class:`HashMismatch` when the stream is exhausted.
    :param md5: also compute an MD5 (the S3 façade needs it for ETags).

    After the stream is exhausted without error, :attr:`hash`, :attr:`size`
    and :attr:`md5` hold the results.
    """

    def __init__(
        self,
        stream: Readable,
        size: int | None = None,
        expected_hash: str | None = None,
        *,
        md5: bool = False,
    ) -> None:
        super().__init__()
        if size is not None and size < 0:
            raise BadParams(f"negative size {size}")
        self._stream = stream
        self._declared_size = size
        self._expected_hash = expected_hash
        self._sha = hashlib.sha384()
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self._count = 0
        self._done = False
        self._readinto = getattr(stream, "readinto", None)
        self.hash: str | None = None
        self.md5: str | None = None

    def result(self) -> str:
        """The content's SHA-384, once every byte was read and checked.

        :raises BlobStoreError: read not finished (a bug in the caller).
        """
        if self.hash is None:
            raise BlobStoreError("the content's hash was asked before it was all read")
        return self.hash

    @property
    def size(self) -> int:
        """Bytes read so far (the whole size once exhausted)."""
        return self._count

    def readable(self) -> bool:
        return True

    def _source_readinto(self, view: memoryview) -> int:
        if self._readinto is not None:
            n = self._readinto(view)
            return 0 if n is None else n
        data = self._stream.read(len(view))
        n = len(data)
        view[:n] = data
        return n

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._done:
            return 0
        view = memoryview(buffer).cast("B")
        want = len(view)
        if self._declared_size is not None:
            want = min(want, self._declared_size - self._count)
        if want == 0:
            self._finish()
            return 0
        n = self._source_readinto(view[:want])
        if n == 0:
            self._finish()
            return 0
        chunk = view[:n]
        if self._md5 is None:
            self._sha.update(chunk)
        elif n >= PARALLEL_MIN:
            # Both hashes read the same bytes; nobody writes them until
            # this returns, after both are done.
            md5 = _helper_pool().submit(self._md5.update, chunk)
            try:
                self._sha.update(chunk)
            finally:
                md5.result()
        else:
            self._sha.update(chunk)
            self._md5.update(chunk)
        self._count += n
        return n

    def _finish(self) -> None:
        if self._declared_size is not None:
            if self._count < self._declared_size:
                raise SizeMismatch(
                    f"unexpected end of content after {self._count} bytes "
                    f"(expected {self._declared_size})"
                )
            if self._stream.read(1):
                raise SizeMismatch(
                    f"content is longer than the declared size {self._declared_size}"
                )
        digest = self._sha.hexdigest()
        if self._expected_hash is not None and digest != self._expected_hash:
            raise HashMismatch(
                f"blob hash mismatch (expected {self._expected_hash}, got {digest})"
            )
        self.hash = digest
        if self._md5 is not None:
            self.md5 = self._md5.hexdigest()
        self._done = True

    def drain(self) -> None:
        """Read the rest of the stream (verifying it) and discard it."""
        buf = bytearray(CHUNK_SIZE)
        while self.readinto(buf):
            pass
