"""Several processes on one SQLite catalog and one local backend, as
gunicorn workers share them: the conditional updates must hold across
processes, not just threads."""

from __future__ import annotations

import io
import multiprocessing
from datetime import timedelta
from pathlib import Path

import pytest

from blobstore import Store
from blobstore.backends.local import LocalBackend
from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore.clock import utcnow
from blobstore.errors import LeaseHeld
from tests.helpers import hash_of

CTX = multiprocessing.get_context("spawn")
WORKERS = 4


def open_store(root: str) -> Store:
    return Store(
        SQLiteCatalog(Path(root) / "catalog.db"),
        LocalBackend(Path(root) / "blobs"),
        min_part_size=10,
    )


def _put_same(root: str, data: bytes, barrier, results) -> None:
    store = open_store(root)
    barrier.wait(timeout=60)
    r = store.put(io.BytesIO(data), hash_of(data), len(data))
    results.put(r.created)


def _put_part(root: str, upload: str, n: int, data: bytes, barrier, results) -> None:
    store = open_store(root)
    barrier.wait(timeout=60)
    store.put_part(upload, n, io.BytesIO(data), len(data), hash_of(data), n * len(data))
    results.put(n)


def _take_lease(root: str, barrier, results) -> None:
    store = open_store(root)
    barrier.wait(timeout=60)
    results.put(
        store.catalog.acquire_lease(
            "gc",
            f"worker-{multiprocessing.current_process().pid}",
            timedelta(minutes=1),
            utcnow(),
        )
    )


def run_all(target, args_list) -> None:
    procs = [CTX.Process(target=target, args=args) for args in args_list]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0, f"worker failed with exit code {p.exitcode}"


def drain(q, n):
    return [q.get(timeout=10) for _ in range(n)]


@pytest.mark.slow
def test_concurrent_puts_of_same_content_in_processes(tmp_path):
    data = b"shared content " * 50_000
    barrier, results = CTX.Barrier(WORKERS), CTX.Queue()
    run_all(_put_same, [(str(tmp_path), data, barrier, results)] * WORKERS)
    assert sorted(drain(results, WORKERS)) == [False] * (WORKERS - 1) + [True]
    store = open_store(str(tmp_path))
    with store.open(hash_of(data)) as f:
        assert f.read() == data
    assert len(list(store.backend.list())) == 1  # the losers removed their copies


@pytest.mark.slow
def test_concurrent_parts_in_processes(tmp_path):
    store = open_store(str(tmp_path))
    upload = store.new_upload(timedelta(hours=1))
    parts = [bytes([97 + n]) * 100_000 for n in range(WORKERS)]
    barrier, results = CTX.Barrier(WORKERS), CTX.Queue()
    run_all(
        _put_part,
        [
            (str(tmp_path), upload, n, parts[n], barrier, results)
            for n in range(WORKERS)
        ],
    )
    assert sorted(drain(results, WORKERS)) == list(range(WORKERS))
    _, whole = store.finish_upload(upload, [hash_of(p) for p in parts])
    with store.open(whole) as f:
        assert f.read() == b"".join(parts)


@pytest.mark.slow
def test_only_one_process_gets_the_gc_lease(tmp_path):
    open_store(str(tmp_path))  # create the schema once
    barrier, results = CTX.Barrier(WORKERS), CTX.Queue()
    run_all(_take_lease, [(str(tmp_path), barrier, results)] * WORKERS)
    assert sorted(drain(results, WORKERS)) == [False] * (WORKERS - 1) + [True]
    with pytest.raises(LeaseHeld):
        open_store(str(tmp_path)).gc([], utcnow())
