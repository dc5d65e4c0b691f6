"""Compare GridFS chunk sizes (255 KiB, GridFS's default, vs 1 MiB) for large blobs.

Usage::

    .venv/bin/python -m bench.gridfs_chunk_size [--uri URI] [--size-mib N] [--runs N]

(from the repository root, so that ``blobstore`` and ``tests`` import).

With ``--uri`` (or ``BLOBSTORE_TEST_MONGODB_URI``) it runs against that MongoDB
in a scratch database it drops afterwards; without one it runs in-process
over mongomock, which measures only the client side (chunking, copying, the
driver's GridFS code) -- no network, no BSON, no storage engine -- so read
those figures as a floor, not as what a deployment will see (mongomock also
ignores indexes, so its range figures grow with the number of chunks).

For each chunk size it reports the best of ``--runs``:

* ``put``: a streamed put of a blob through the backend (MiB/s);
* ``get``: a sequential read of it (MiB/s);
* ``range``: 64 KiB reads at 200 random offsets (ms each): every such read
  fetches at least one whole chunk, so bigger chunks cost more here;
* ``bson``: encoding then decoding the blob as chunk documents (MiB/s), the
  client-side work the driver does per chunk on a real server.
"""

from __future__ import annotations

import argparse
import os
import random
import time
import types
import uuid
from collections.abc import Callable

import bson

from blobstore.backends.gridfs import GridFSBackend
from blobstore.hashing import VerifyingReader
from tests.helpers import DataSource

MIB = 1024 * 1024
CHUNK_SIZES = {"255 KiB": 255 * 1024, "1 MiB": MIB}


def best_of(runs: int, fn: Callable[[], None]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def make_client(uri: str | None):
    if uri:
        import pymongo

        return pymongo.MongoClient(uri, tz_aware=True), "mongodb"
    import mongomock
    import mongomock.gridfs

    mongomock.gridfs.enable_gridfs_integration()
    client = mongomock.MongoClient(tz_aware=True)
    # What pymongo's GridFSBucket reads and mongomock lacks (see the tests).
    client.options = types.SimpleNamespace(timeout=None)
    return client, "mongomock (client side only)"


def bench_backend(backend: GridFSBackend, size: int, runs: int) -> dict[str, float]:
    name = "bench"

    def put() -> None:
        backend.remove(name)
        backend.put(name, DataSource(size, 5), size)

    def get() -> None:
        f, got = backend.open(name)
        with f:
            VerifyingReader(f, got).drain()

    rng = random.Random(42)
    offsets = [rng.randrange(0, size - 65536) for _ in range(200)]

    def ranges() -> None:
        f, _ = backend.open(name)
        with f:
            for off in offsets:
                f.seek(off)
                f.read(65536)

    put_s = best_of(runs, put)
    get_s = best_of(runs, get)
    range_s = best_of(runs, ranges)
    backend.remove(name)
    return {
        "put MiB/s": size / MIB / put_s,
        "get MiB/s": size / MIB / get_s,
        "range ms": range_s / len(offsets) * 1000,
    }


def bench_bson(chunk_size: int, size: int, runs: int) -> float:
    chunk = os.urandom(chunk_size)
    count = size // chunk_size
    files_id = bson.ObjectId()

    def run() -> None:
        for n in range(count):
            bson.decode(bson.encode({"files_id": files_id, "n": n, "data": chunk}))

    return count * chunk_size / MIB / best_of(runs, run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uri", default=os.environ.get("BLOBSTORE_TEST_MONGODB_URI"))
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * MIB

    client, target = make_client(args.uri)
    db = f"blobstore_bench_{uuid.uuid4().hex[:8]}"
    print(f"target: {target}; blob: {args.size_mib} MiB; best of {args.runs}")
    print(
        f"{'chunk':>8} {'put MiB/s':>10} {'get MiB/s':>10} {'range ms':>9} "
        f"{'bson MiB/s':>11}"
    )
    try:
        for label, chunk_size in CHUNK_SIZES.items():
            backend = GridFSBackend(
                database=db,
                prefix=f"c{chunk_size}",
                chunk_size=chunk_size,
                client=client,
            )
            r = bench_backend(backend, size, args.runs)
            b = bench_bson(chunk_size, size, args.runs)
            print(
                f"{label:>8} {r['put MiB/s']:>10.0f} {r['get MiB/s']:>10.0f} "
                f"{r['range ms']:>9.2f} {b:>11.0f}"
            )
    finally:
        client.drop_database(db)
        client.close()


if __name__ == "__main__":
    main()
