"""MarkSet: the garbage collector's set of live hashes, spilled to a file so
that a pass's memory stays flat however many blobs are live.

GC marks every blob something references before it sweeps, so the set holds
one entry per live blob: at 10^6 live blobs a Python set of 48-byte digests
took ~120 MiB, and even 8-byte integers in memory grow with the live set
(``python -m bench --only scale`` measures the pass's peak RSS). This keeps
the first 64 bits of each SHA-384 as an unsigned integer; adds go into a
set of at most ``buffer_size`` of them, and a full buffer is written, sorted,
as one *run* at the end of an anonymous temporary file (8 bytes an entry;
gone with the process, whatever way it ends).

Nothing asks "is this hash marked?" at random. Both readers -- the sweep,
and the composites' marking -- walk catalog records in ascending hash order,
which is the order the catalog lists blobs in (``Catalog.iter_blobs``), so
:meth:`MarkSet.join` merges the sorted runs (a k-way merge reading each run a
few KiB at a time) alongside the records, like a merge join. Memory is the
buffer (~5 MB: a set of 2^16 integers) plus a 4 KiB read buffer per run, one
run per 2^16 live blobs: ~6 MB more at 10^8 live blobs, against 8 bytes per
live blob in memory before (800 MB).

A shortened hash can only err one way: a blob whose first 64 bits equal a
live blob's is *kept* (about n / 2^64 per blob, 5e-14 at 10^6 live), never a
live blob deleted. So the sweep may trust "not marked" absolutely -- as long
as the records really come in order, which :meth:`join` checks on every one
(a record out of order stops the pass with :class:`~blobstore.errors.Corrupt`
before anything is judged on it).
"""

from __future__ import annotations

import heapq
import os
import tempfile
from array import array
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from typing import TypeVar

from blobstore.errors import Corrupt
from blobstore.errors import Unavailable

__all__ = ["MarkSet"]

T = TypeVar("T")

_ENTRY = array("Q").itemsize  # 8
#: Entries read from a run at a time during a merge (4 KiB).
_READ = 512


def _key(hex_hash: str) -> int:
    return int(hex_hash[:16], 16)


class MarkSet:
    """A set of hex SHA-384 hashes that may keep a few extra (see above).

    :param buffer_size: entries held in memory before they go to the file.
    :param spill_dir: where the temporary file goes (default: ``TMPDIR``).
    """

    def __init__(self, buffer_size: int = 1 << 16, spill_dir: str | None = None):
        self._buffer_size = buffer_size
        self._spill_dir = spill_dir
        self._buffer: set[int] = set()
        self._file = None  # created at the first spill
        self._runs: list[tuple[int, int]] = []  # (first entry, entries)
        self._spilled = 0
        #: Distinct entries, as counted by the last whole :meth:`join`.
        self.distinct: int | None = None

    def add(self, hex_hash: str) -> None:
        """Add a well-formed hex SHA-384 (the caller checks the form)."""
        self._buffer.add(_key(hex_hash))
        if len(self._buffer) >= self._buffer_size:
            self._spill()

    def __len__(self) -> int:
        """Entries added; a hash added into two runs counts twice (the exact
        count is :attr:`distinct`, known after a whole :meth:`join`)."""
        return self._spilled + len(self._buffer)

    def join(
        self, items: Iterable[T], hash_of: Callable[[T], str]
    ) -> Iterator[tuple[T, bool]]:
        """Each of *items* with whether its hash is marked.

        *items* must come in ascending order of ``hash_of(item)``; one that
        does not raises :class:`~blobstore.errors.Corrupt` before it is
        yielded. Adds may go on during a join; it answers for what was added
        before it started. Once *items* run out the join counts the rest of
        the set, so :attr:`distinct` is exact when the iterator is exhausted.
        """
        self.distinct = None
        marked = self._merged()
        current = next(marked, None)
        seen = 0 if current is None else 1  # distinct values taken so far
        last_key = -1
        last_hash = ""
        for item in items:
            hex_hash = hash_of(item)
            key = _key(hex_hash)
            if key < last_key:
                raise Corrupt(
                    f"the catalog listed blob {hex_hash} after {last_hash}: out "
                    "of hash order, so GC cannot tell live from dead; stopped"
                )
            last_key, last_hash = key, hex_hash
            while current is not None and current < key:
                current = next(marked, None)
                seen += current is not None
            yield item, current == key
        self.distinct = seen + sum(1 for _ in marked)

    def _merged(self) -> Iterator[int]:
        """Every entry so far in ascending order, repeats collapsed."""
        self._spill()
        runs = [self._read_run(start, count) for start, count in self._runs]
        last = -1
        for value in heapq.merge(*runs):
            if value != last:
                yield value
                last = value

    def _spill(self) -> None:
        if not self._buffer:
            return
        run = array("Q", sorted(self._buffer))
        start = self._spilled
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile(  # noqa: SIM115 (kept open)
                    prefix="blobstore-gc-marks-", dir=self._spill_dir
                )
            os.pwrite(self._file.fileno(), run.tobytes(), start * _ENTRY)
        except OSError as exc:
            where = self._spill_dir or tempfile.gettempdir()
            raise Unavailable(
                f"gc cannot spill its mark set to {where}: {exc}; "
                "the pass stopped before deleting anything"
            ) from exc
        self._runs.append((start, len(run)))
        self._spilled += len(run)
        self._buffer = set()

    def _read_run(self, start: int, count: int) -> Iterator[int]:
        fd = self._file.fileno()
        end = start + count
        while start < end:
            n = min(_READ, end - start)
            chunk = array("Q")
            chunk.frombytes(os.pread(fd, n * _ENTRY, start * _ENTRY))
            yield from chunk
            start += n

    def close(self) -> None:
        """Drop the temporary file (also dropped when the process ends)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> MarkSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
