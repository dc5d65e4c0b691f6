"""MarkSet (blobstore/markset.py): GC's set of live hashes, spilled to a
temporary file. A join over records in hash order says "marked" for exactly
what was added, through every spill and merge (up to a shortened-hash
collision, which only ever keeps a blob); records out of order stop it; its
memory does not grow with the set."""

from __future__ import annotations

import hashlib
import os
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from blobstore.errors import Corrupt
from blobstore.errors import Unavailable
from blobstore.markset import MarkSet


def h(i: int) -> str:
    return hashlib.sha384(b"%d" % i).hexdigest()


def same(value: str) -> str:
    return value


def marked(marks: MarkSet, hashes) -> dict[str, bool]:
    return dict(marks.join(sorted(set(hashes)), same))


@settings(max_examples=80, deadline=None)
@given(
    added=st.lists(st.integers(0, 5000), max_size=400),
    probes=st.lists(st.integers(0, 5000), max_size=100),
    buffer_size=st.integers(1, 40),
)
def test_a_join_marks_exactly_what_was_added(added, probes, buffer_size):
    with MarkSet(buffer_size=buffer_size) as marks:
        for i in added:
            marks.add(h(i))
        got = marked(marks, [h(i) for i in {*added, *probes}])
        assert got == {h(i): i in added for i in {*added, *probes}}
        assert marks.distinct == len(set(added))
        assert len(marks) >= len(set(added))  # an upper bound, repeats counted


def test_distinct_counts_what_the_records_never_reached():
    with MarkSet(buffer_size=3) as marks:
        for i in range(50):
            marks.add(h(i))
            marks.add(h(i))  # repeats, within a buffer and across runs
        assert dict(marks.join([], same)) == {}
        assert marks.distinct == 50
        first = sorted(h(i) for i in range(50))[0]
        assert list(marks.join([first], same)) == [(first, True)]
        assert marks.distinct == 50


def test_a_join_not_run_to_the_end_leaves_distinct_unknown():
    with MarkSet(buffer_size=4) as marks:
        for i in range(20):
            marks.add(h(i))
        joined = marks.join(sorted(h(i) for i in range(20)), same)
        next(joined)
        assert marks.distinct is None


def test_a_record_out_of_hash_order_stops_the_join_before_it_is_judged():
    with MarkSet() as marks:
        low, high = sorted([h(1), h(2)])
        marks.add(low)
        joined = marks.join([high, low], same)
        assert next(joined) == (high, False)
        with pytest.raises(Corrupt, match="out of hash order") as caught:
            next(joined)
        assert low in str(caught.value) and high in str(caught.value)


def test_adds_during_a_join_go_to_the_next_one():
    with MarkSet(buffer_size=2) as marks:
        hashes = sorted(h(i) for i in range(10))
        marks.add(hashes[0])
        seen = []
        for _value, is_marked in marks.join(hashes, same):
            seen.append(is_marked)
            marks.add(hashes[-1])  # spills (buffer of 2) while the merge reads
            marks.add(h(100 + len(seen)))
        assert seen == [True] + [False] * 9
        assert marked(marks, hashes) == {
            v: v in (hashes[0], hashes[-1]) for v in hashes
        }


def test_a_hash_sharing_the_first_64_bits_is_kept_never_a_live_one_lost():
    with MarkSet() as marks:
        live = h(1)
        marks.add(live)
        lookalike = live[:16] + "0" * 80
        other = h(2)
        got = marked(marks, [live, lookalike, other])
        assert got == {live: True, lookalike: True, other: False}


def _peak_bytes(count: int) -> int:
    hashes = [h(i) for i in range(count)]
    in_order = sorted(hashes)  # both lists made before the count starts
    tracemalloc.start()
    with MarkSet() as marks:
        for value in hashes:
            marks.add(value)
        for _ in marks.join(in_order, same):
            pass
        _size, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def test_memory_stays_flat_as_the_set_grows():
    small, large = _peak_bytes(100_000), _peak_bytes(400_000)
    # The buffer (2^16 entries, ~5 MB as a set) dominates both; 4x the
    # entries adds only a read buffer per run (4 KiB). In memory, 8 bytes
    # an entry would add 2.4 MB; a set of digests took ~120 bytes an entry.
    assert large < small + 300_000, (small, large)


def test_a_spill_that_fails_names_the_directory_and_deletes_nothing(tmp_path):
    missing = tmp_path / "gone"
    marks = MarkSet(buffer_size=2, spill_dir=str(missing))
    marks.add(h(1))
    with pytest.raises(Unavailable, match="stopped before deleting") as caught:
        marks.add(h(2))
    assert str(missing) in str(caught.value)
    marks.close()


def test_close_drops_the_temporary_file(tmp_path):
    with MarkSet(buffer_size=1, spill_dir=str(tmp_path)) as marks:
        marks.add(h(1))
        fd = marks._file.fileno()
        assert os.fstat(fd).st_size == 8
        assert os.listdir(tmp_path) == []  # anonymous: nothing left behind
    assert marks._file is None
    with pytest.raises(OSError):
        os.fstat(fd)
