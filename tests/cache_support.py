"""Remotes for the read-cache tests, and a wrapper that watches them.

``REMOTES`` maps a name to a factory ``(tmp_path, request) -> Backend`` (the
``tests/factories.py`` convention) returning a fresh, empty backend; the
cache tests run over each. A real remote joins by adding its line.

:class:`InstrumentedRemote` wraps any backend and counts what the cache asks
of it (opens per name, bytes read), and can misbehave on demand: stop
(everything raises ``Unavailable``), fail streams midway, or hold streams at
a gate until the test opens it, so races are synchronised, not slept on.
"""

from __future__ import annotations

import collections
import hashlib
import io
import threading
from collections.abc import Callable
from pathlib import Path

from blobstore.backends.base import Backend
from blobstore.backends.cache import CacheBackend
from blobstore.backends.local import LocalBackend
from blobstore.backends.memory import MemoryBackend
from blobstore.errors import Unavailable
from tests.factories import _swift_backend

REMOTES: dict[str, Callable[[Path, object], Backend]] = {
    "memory": lambda tmp, request: MemoryBackend(),
    "local": lambda tmp, request: LocalBackend(tmp / "remote", fsync=False),
    "swift": _swift_backend,  # a real Swift (tests/swift_server.py), fresh container
}


class InstrumentedRemote(Backend):
    """A backend wrapper that counts and can fail (see the module docs)."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.opens: collections.Counter[str] = collections.Counter()
        self.bytes_read = 0
        self.stopped = False
        #: streams of these open numbers (1-based, per name) raise after
        #: ``fail_after`` bytes; ``fail_all`` makes every stream fail.
        self.fail_opens: set[int] = set()
        self.fail_all = False
        self.fail_after = 0
        #: streams deliver at most ``gate_after`` bytes until the gate is set.
        self.gate = threading.Event()
        self.gate.set()
        self.gate_after = 0
        self.gate_reached = threading.Event()
        self._lock = threading.Lock()

    def _alive(self) -> None:
        if self.stopped:
            raise Unavailable("remote stopped (test)")

    def put(self, name, stream, size=None):
        self._alive()
        self.inner.put(name, stream, size)

    def open(self, name):
        self._alive()
        stream, size = self.inner.open(name)
        with self._lock:
            self.opens[name] += 1
            number = self.opens[name]
        fails = self.fail_all or number in self.fail_opens
        return _Stream(self, stream, self.fail_after if fails else None), size

    def remove(self, name):
        self._alive()
        self.inner.remove(name)

    def list(self):
        self._alive()
        return self.inner.list()

    def check(self):
        self._alive()
        self.inner.check()

    def stats(self):
        self._alive()
        return {"remote": "instrumented"}

    def close(self):
        self.inner.close()

    def _count(self, n: int) -> None:
        with self._lock:
            self.bytes_read += n


class _Stream(io.RawIOBase):
    def __init__(self, remote: InstrumentedRemote, inner, fail_after) -> None:
        super().__init__()
        self._remote = remote
        self._inner = inner
        self._fail_after = fail_after
        self._delivered = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        return self._inner.seek(offset, whence)

    def tell(self):
        return self._inner.tell()

    def readinto(self, buffer):
        remote = self._remote
        remote._alive()
        view = memoryview(buffer).cast("B")
        if self._fail_after is not None:
            if self._delivered >= self._fail_after:
                raise Unavailable("remote dropped the connection (test)")
            view = view[: self._fail_after - self._delivered]
        if not remote.gate.is_set():
            if self._delivered >= remote.gate_after:
                remote.gate_reached.set()
                if not remote.gate.wait(30):
                    raise TimeoutError("test gate never opened")
            else:
                view = view[: remote.gate_after - self._delivered]
        n = self._inner.readinto(view) or 0
        self._delivered += n
        remote._count(n)
        return n

    def close(self):
        if not self.closed:
            self._inner.close()
        super().close()


def make_cache(remote: Backend, path: Path, **kw) -> CacheBackend:
    """A cache with test-friendly defaults (no free-space floor)."""
    kw.setdefault("max_size", 1 << 30)
    kw.setdefault("min_free", 0)
    return CacheBackend(remote, path, **kw)


def read_in_process(remote_dir: str, cache_dir: str, name: str, barrier) -> dict:
    """Run in a child process: read *name* through a cache on a shared
    directory, return the content's digest and this process's counters."""
    cache = make_cache(LocalBackend(remote_dir, fsync=False), Path(cache_dir))
    try:
        barrier.wait(60)
        f, size = cache.open(name)
        with f:
            digest = hashlib.sha384(f.read()).hexdigest()
        cache.wait_idle()
        return {"digest": digest, "size": size, **cache.cache_stats()}
    finally:
        cache.close()
