"""Scenario: repeated reads of one big blob, with and without the read cache.

``measure(remote, cache_dir)`` puts a blob (256 MiB by default) into *remote*
and times whole sequential reads of it: straight from the remote, then
through a :class:`~blobstore.backends.cache.CacheBackend` — the first read
(a miss that fills), repeated hits with block verification, and hits as
plain files (``verify_reads = false``). Any backend can be the remote (the
Swift one once it exists); ``python -m bench.cache`` runs it over a local
directory, which shows the cache's own overhead rather than a network's.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from blobstore.backends.base import Backend
from blobstore.backends.cache import CacheBackend
from blobstore.backends.local import LocalBackend

MiB = 1 << 20


def _read(backend: Backend, name: str) -> float:
    """Seconds to read *name* to its end in 1 MiB reads."""
    buf = bytearray(MiB)
    start = time.perf_counter()
    f, _ = backend.open(name)
    with f:
        while f.readinto(buf):
            pass
    return time.perf_counter() - start


def measure(
    remote: Backend, cache_dir: Path, size: int = 256 * MiB, repeats: int = 3
) -> list[tuple[str, float]]:
    """(scenario, MB/s) rows; see the module docs."""
    name = "benchcache" + os.urandom(4).hex()
    block = os.urandom(MiB)

    class _Source:
        left = size

        def read(self, n: int = -1) -> bytes:
            n = min(self.left, MiB if n < 0 else n, MiB)
            self.left -= n
            return block[:n]

    remote.put(name, _Source(), size)

    def rate(seconds: float) -> float:
        return size / seconds / 1e6

    rows = [("remote only", rate(min(_read(remote, name) for _ in range(repeats))))]
    for verify in (True, False):
        cache = CacheBackend(
            remote,
            cache_dir / f"verify-{verify}",
            4 * size,
            min_free=0,
            keep_on_put=False,
            verify_reads=verify,
        )
        try:
            if verify:
                rows.append(("cache miss (fills)", rate(_read(cache, name))))
            else:
                _read(cache, name)
            cache.wait_idle()
            label = "cache hit, verified" if verify else "cache hit, plain file"
            rows.append((label, rate(min(_read(cache, name) for _ in range(repeats)))))
        finally:
            cache.close()
    remote.remove(name)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cache.") as tmp:
        remote = LocalBackend(Path(tmp) / "remote", fsync=False)
        for label, mbps in measure(remote, Path(tmp) / "cache", args.size_mib * MiB):
            print(f"{label:24} {mbps:8.0f} MB/s")


if __name__ == "__main__":
    main()
