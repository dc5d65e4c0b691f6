"""Property: any blob, any range, under any tolerated failures, reads back
byte-exact from the erasure-posix backend."""

from __future__ import annotations

import io
import os
import random
import tempfile
from pathlib import Path

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests.erasure_helpers import break_drive
from tests.erasure_helpers import corrupt_shard
from tests.erasure_helpers import delete_shard
from tests.erasure_helpers import make_set
from tests.erasure_helpers import shard_drive

BLOCK = 4096  # small blocks: many of them, and every edge case, cheaply

sizes = st.one_of(
    st.sampled_from(
        [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, 3 * 1024 * 1024 + 17]
    ),
    st.integers(min_value=0, max_value=20 * BLOCK),
)
layouts = st.sampled_from([(1, 0), (3, 0), (2, 1), (4, 2), (5, 2), (6, 2)])
failure_kinds = st.sampled_from(["delete", "corrupt", "removed", "file"])


@st.composite
def scenarios(draw):
    drives, parity = draw(layouts)
    size = draw(sizes)
    # Up to m shards fail, each in its own way.
    failed = draw(
        st.lists(st.integers(0, drives - 1), unique=True, min_size=0, max_size=parity)
    )
    kinds = [draw(failure_kinds) for _ in failed]
    ranges = draw(
        st.lists(
            st.tuples(st.integers(0, size + 10), st.integers(0, size + 10)),
            min_size=1,
            max_size=4,
        )
    )
    seed = draw(st.integers(0, 2**32 - 1))
    return drives, parity, size, list(zip(failed, kinds, strict=True)), ranges, seed


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_reads_are_exact_under_tolerated_failures(scenario):
    drives, parity, size, failures, ranges, seed = scenario
    data = random.Random(seed).randbytes(size)
    with tempfile.TemporaryDirectory() as tmp:
        backend = make_set(Path(tmp), drives, parity, block_size=BLOCK, fsync=False)
        try:
            backend.put("prop", io.BytesIO(data), size)
            for shard, kind in failures:
                if kind == "delete":
                    delete_shard(backend, "prop", shard)
                elif kind == "corrupt":
                    path = shard_drive(backend, "prop", shard).shard_path("prop")
                    length = os.path.getsize(path)
                    if length:
                        corrupt_shard(backend, "prop", shard, offset=seed % length)
                else:
                    break_drive(shard_drive(backend, "prop", shard), kind)
            f, got_size = backend.open("prop")
            assert got_size == size
            with f:
                for start, length in ranges:
                    f.seek(start)
                    assert f.read(length) == data[start : start + length]
                f.seek(0)
                assert f.read() == data
        finally:
            backend.close()
