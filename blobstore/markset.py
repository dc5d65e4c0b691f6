"""MarkSet: the garbage collector's set of live hashes, in 8 bytes each.

GC marks every blob something references before it sweeps, so the set
holds one entry per live blob: at 10^6 live blobs a Python set of 48-byte
digests took ~120 MiB (measured by ``python -m bench --only scale``). This
keeps the first 64 bits of each SHA-384 as unsigned integers in sorted
``array('Q')`` runs: 8 bytes an entry, plus a small unsorted buffer.

A shortened hash can only err one way: a blob whose first 64 bits equal a
live blob's is *kept* (about n / 2^64 per blob, 5e-14 at 10^6 live), never a
live blob deleted. So the sweep may trust "not in the set" absolutely.

Adds go into a set of at most ``buffer_size`` integers; a full buffer
becomes a sorted run, and runs merge pairwise while the newest is at least
half the size of the one before (as in a binary counter), so there are
O(log n) runs and each entry is merged O(log n) times. :meth:`freeze` merges
everything into one run once marking is done, after which a lookup is one
binary search and :func:`len` is exact.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left

__all__ = ["MarkSet"]


def _key(hex_hash: str) -> int:
    return int(hex_hash[:16], 16)


def _merged(a: array, b: array) -> array:
    out = array("Q")
    last = -1
    for value in heapq.merge(a, b):
        if value != last:
            out.append(value)
            last = value
    return out


class MarkSet:
    """A set of hex SHA-384 hashes that may keep a few extra (see above)."""

    def __init__(self, buffer_size: int = 1 << 16) -> None:
        self._buffer_size = buffer_size
        self._buffer: set[int] = set()
        self._runs: list[array] = []

    def add(self, hex_hash: str) -> None:
        """Add a well-formed hex SHA-384 (the caller checks the form)."""
        self._buffer.add(_key(hex_hash))
        if len(self._buffer) >= self._buffer_size:
            self._flush()

    def __contains__(self, hex_hash: str) -> bool:
        key = _key(hex_hash)
        if key in self._buffer:
            return True
        for run in self._runs:  # once frozen, one (the sweep's case)
            i = bisect_left(run, key)
            if i < len(run) and run[i] == key:
                return True
        return False

    def __len__(self) -> int:
        """Exact once frozen; before, entries added twice may count twice."""
        return len(self._buffer) + sum(len(run) for run in self._runs)

    def freeze(self) -> None:
        """Merge everything into one run (adds may still follow)."""
        self._flush()
        while len(self._runs) > 1:
            last = self._runs.pop()
            self._runs[-1] = _merged(self._runs[-1], last)

    def _flush(self) -> None:
        if not self._buffer:
            return
        self._runs.append(array("Q", sorted(self._buffer)))
        self._buffer = set()
        runs = self._runs
        while len(runs) > 1 and len(runs[-1]) * 2 >= len(runs[-2]):
            last = runs.pop()
            runs[-1] = _merged(runs[-1], last)
