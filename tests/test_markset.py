"""MarkSet (blobstore/markset.py): GC's compact set of live hashes. Whatever
is added is a member, through every flush and merge; what is not added is
not (up to a shortened-hash collision, which only ever keeps a blob)."""

from __future__ import annotations

import hashlib
import tracemalloc

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from blobstore.markset import MarkSet


def h(i: int) -> str:
    return hashlib.sha384(b"%d" % i).hexdigest()


@settings(max_examples=60, deadline=None)
@given(
    added=st.lists(st.integers(0, 5000), max_size=400),
    probes=st.lists(st.integers(0, 5000), max_size=100),
    buffer_size=st.integers(1, 40),
    freeze_at=st.integers(0, 400),
)
def test_members_are_what_was_added(added, probes, buffer_size, freeze_at):
    marks = MarkSet(buffer_size=buffer_size)
    for n, i in enumerate(added):
        if n == freeze_at:
            marks.freeze()  # adds may follow a freeze
        marks.add(h(i))
        assert h(i) in marks
    for i in {*added, *probes}:
        assert (h(i) in marks) == (i in added)
    marks.freeze()
    assert len(marks) == len(set(added))
    for i in {*added, *probes}:
        assert (h(i) in marks) == (i in added)


def test_runs_stay_few_while_marking():
    marks = MarkSet(buffer_size=8)
    for i in range(5000):
        marks.add(h(i))
    assert len(marks._runs) <= 12  # O(log n): 5000 / 8 buffers in <= log2 runs
    marks.freeze()
    assert len(marks._runs) == 1 and len(marks) == 5000


def test_a_hash_sharing_the_first_64_bits_is_kept_never_a_live_one_lost():
    marks = MarkSet()
    live = h(1)
    marks.add(live)
    lookalike = live[:16] + "0" * 80
    assert lookalike in marks  # kept: the safe way to be wrong
    assert h(2) not in marks


def test_about_8_bytes_a_live_blob_once_frozen():
    hashes = [h(i) for i in range(200_000)]
    tracemalloc.start()
    marks = MarkSet()
    for value in hashes:
        marks.add(value)
    marks.freeze()
    size, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert size < 200_000 * 12, size  # a set of digests took ~120 bytes each
