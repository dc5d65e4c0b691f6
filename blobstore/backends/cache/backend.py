"""CacheBackend: a read-through local-disk cache in front of a remote backend.

See the package docs (:mod:`blobstore.backends.cache`) for what it does and
how to configure it; this module is the orchestration: which reader an open
gets, who fills, admission, eviction, counters.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any
from typing import BinaryIO

from blobstore.backends.base import Backend
from blobstore.backends.base import ObjectInfo
from blobstore.backends.base import check_name
from blobstore.backends.cache import metrics
from blobstore.backends.cache.fill import Fill
from blobstore.backends.cache.fill import FillState
from blobstore.backends.cache.fill import PutTee
from blobstore.backends.cache.layout import Layout
from blobstore.backends.cache.layout import Meta
from blobstore.backends.cache.limits import DEFAULT_MIN_FREE
from blobstore.backends.cache.limits import Limits
from blobstore.backends.cache.metrics import Counters
from blobstore.backends.cache.readers import CachedReader
from blobstore.backends.cache.readers import RemoteCursor
from blobstore.backends.cache.readers import RemoteReader
from blobstore.backends.cache.readers import TailReader
from blobstore.backends.healing import HealProgress
from blobstore.backends.healing import HealReport
from blobstore.errors import BlobStoreError
from blobstore.errors import Unavailable
from blobstore.hashing import Readable

__all__ = ["CacheBackend"]

log = logging.getLogger(__name__)


class CacheBackend(Backend):
    """A read-through, write-through local-disk LRU cache of *remote*.

    :param remote: the backend that holds the objects.
    :param path: the cache directory (created if missing; may be shared by
        several processes).
    :param max_size: bytes of cached content to keep at most.
    :param high_water: start evicting above this fraction of *max_size*.
    :param low_water: evict down to this fraction of *max_size*.
    :param min_free: also evict when the filesystem has less free space.
    :param max_object_size: objects bigger than this are not cached.
    :param keep_on_put: keep a copy of what is put (artifacts are often read
        soon after they are written).
    :param verify_reads: check each block of a cached copy against its CRC
        as it is read (default). Without it, hits are plain files a WSGI
        server can ``sendfile``, and damage goes undetected.
    :param max_fills: fills running at once in this process; more misses
        are served from the remote without caching.
    :param window: a reader of a fill in progress that is more than this far
        ahead of it reads the remote directly instead of waiting.
    :param scan_interval: seconds between rescans of the directory (to see
        other processes' fills and evict for them).
    :param touch_interval: a hit updates the copy's mtime (its LRU age for
        other processes and restarts) at most this often, in seconds.
    """

    type_name = "cache"

    def __init__(
        self,
        remote: Backend,
        path: str | os.PathLike[str],
        max_size: int,
        *,
        high_water: float = 0.90,
        low_water: float = 0.80,
        min_free: int = DEFAULT_MIN_FREE,
        max_object_size: int | None = None,
        keep_on_put: bool = True,
        verify_reads: bool = True,
        max_fills: int = 8,
        window: int = 8 << 20,
        scan_interval: float = 60.0,
        touch_interval: float = 60.0,
    ) -> None:
        self.remote = remote
        self.limits = Limits(
            max_size,
            high_water,
            low_water,
            min_free,
            -1 if max_object_size is None else max_object_size,
        )
        self.path = str(path)
        try:
            self._layout = Layout(path)
            self._layout.sweep_tmp()
        except OSError as exc:
            raise Unavailable(f"cannot use cache directory {path}: {exc}") from exc
        self._keep_on_put = keep_on_put
        self._verify_reads = verify_reads
        self._max_fills = max_fills
        self._window = window
        self._touch_ns = int(touch_interval * 1e9)
        self._counters = Counters(str(path))
        # Guarded by _lock: fills in progress, usage estimate, LRU clock.
        self._lock = threading.Lock()
        self._fills: dict[str, Fill] = {}
        self._prefetchers: set[threading.Thread] = set()
        self._usage = 0
        self._entries = 0
        self._reserved = 0
        self._last_used: dict[str, int] = {}
        self._clock = 0
        self._closing = False
        self._evictor = _Evictor(self._evict_pass, scan_interval)
        metrics.register(self)

    # -- the Backend contract ----------------------------------------------

    def open(self, name: str) -> tuple[BinaryIO, int]:
        return self._open(name, None, prefetch=False)  # type: ignore[return-value]

    def open_blob(self, name: str, hash: str) -> tuple[BinaryIO, int]:
        return self._open(name, hash, prefetch=False)  # type: ignore[return-value]

    def put(self, name: str, stream: Readable, size: int | None = None) -> None:
        check_name(name)
        self._forget(name)  # a put replaces the object: never serve the old copy
        reserved = 0
        fd = None
        if self._keep_on_put and not self._closing:
            reserved = size if size is not None else 0
            if self._admit(reserved):
                fd = self._lock_fill(name)
                if fd is None:
                    self._release(reserved)
        if fd is None:
            self.remote.put(name, stream, size)
            return
        tee = PutTee(stream, fd, self.limits.max_object_size)
        try:
            self.remote.put(name, tee, size)
        except BaseException:
            self._release(reserved)
            self._layout.abandon_fill(name, fd)
            raise
        self._release(reserved)
        keep = tee.complete and not tee.dropped and (size in (None, tee.count))
        if keep and self._admit(tee.count):
            try:
                self._layout.commit_fill(name, fd, tee.meta())
            except OSError as exc:
                log.warning("cache copy of put %s dropped: %s", name, exc)
                self._layout.abandon_fill(name, fd)
            else:
                self._committed(name, tee.count)
            finally:
                self._release(tee.count)
        else:
            self._layout.abandon_fill(name, fd)

    def remove(self, name: str) -> None:
        check_name(name)
        self.remote.remove(name)
        self._forget(name)

    def list(self) -> Iterator[ObjectInfo]:
        return self.remote.list()

    def check(self) -> None:
        self.remote.check()

    def stats(self) -> dict[str, Any]:
        return {**self.remote.stats(), "cache": self.cache_stats()}

    def purge_trash(self) -> int:
        return self.remote.purge_trash()  # the cache itself evicts, no trash

    # Healing is the remote's: a copy here was verified against its SHA-384
    # when filled and is checked block by block as it is read; a damaged one
    # is dropped and fetched again, never healed.

    @property
    def can_heal(self) -> bool:
        return self.remote.can_heal

    def heal(
        self, name: str | None = None, progress: HealProgress | None = None
    ) -> HealReport:
        return self.remote.heal(name, progress)

    def needs_heal(self) -> set[str]:
        return self.remote.needs_heal()

    @property
    def origin(self) -> Backend:
        return self.remote.origin

    def metric_collectors(self, *, include_counters: bool = True) -> list[Any]:
        return [
            *self.remote.metric_collectors(include_counters=include_counters),
            metrics.collector(include_counters=include_counters),
        ]

    def prefetch(self, name: str, hash: str | None = None) -> None:
        try:
            check_name(name)
            if self._closing or self._layout.committed(name):
                return
        except (ValueError, OSError):
            return
        with self._lock:
            if name in self._fills or len(self._fills) >= self._max_fills:
                return
            thread = threading.Thread(
                target=self._prefetch_now,
                args=(name, hash),
                name=f"cache-prefetch-{name[:12]}",
                daemon=True,
            )
            # Started under the lock, so nobody joins it before it started.
            thread.start()
            self._prefetchers.add(thread)

    def close(self) -> None:
        with self._lock:
            if self._closing:
                return
            self._closing = True  # from now on, no new fills are admitted
            prefetchers = list(self._prefetchers)
        for thread in prefetchers:
            thread.join()
        with self._lock:
            fills = list(self._fills.values())
        for fill in fills:
            fill.cancel()
        self._evictor.close()
        for fill in fills:
            if fill.thread is not None:
                fill.thread.join()
        metrics.unregister(self)
        self.remote.close()

    # -- figures and synchronisation ---------------------------------------

    def cache_stats(self) -> dict[str, Any]:
        """The counters (see :data:`metrics.COUNTERS`) and current figures."""
        with self._lock:
            figures = {
                "size_bytes": self._usage,
                "entries": self._entries,
                "fills_running": len(self._fills),
            }
        return {
            "path": self.path,
            "max_size_bytes": self.limits.max_size,
            **figures,
            **self._counters.snapshot(),
        }

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until this process's fills and prefetches are finished and an
        eviction pass has run after them; False on timeout.

        For tests and orderly shutdowns; requests never need it.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                threads = list(self._prefetchers)
                threads += [f.thread for f in self._fills.values() if f.thread]
                opening = [f for f in self._fills.values() if not f.thread]
                idle = not self._fills and not self._prefetchers
            if idle:
                break
            for thread in threads:
                thread.join(max(deadline - time.monotonic(), 0))
            for fill in opening:  # no thread yet: wait for its next step
                with fill.cond:
                    fill.cond.wait(min(0.05, max(deadline - time.monotonic(), 0)))
            if time.monotonic() >= deadline:
                return False
        return self._evictor.run_and_wait(max(deadline - time.monotonic(), 0))

    # -- opening -------------------------------------------------------------

    def _open(
        self, name: str, hash: str | None, *, prefetch: bool
    ) -> tuple[BinaryIO, int] | None:
        check_name(name)
        if self._closing:
            raise Unavailable("the cache backend is closed")
        while True:
            found = self._find_copy(name, hash)
            if found is not None:
                return self._hit(name, hash, *found, prefetch=prefetch)
            with self._lock:
                fill = self._fills.get(name)
                leader = fill is None
                if fill is None:
                    fill = self._fills[name] = Fill(name, hash)
            if leader:
                return self._lead(fill, prefetch)
            if prefetch:
                return None  # someone is on it already
            joined = self._follow(fill)
            if joined is not None:
                self._counters.add("misses")
                return joined
            # That fill ended before we could join it: look again.

    def _find_copy(self, name: str, hash: str | None) -> tuple[int, Meta] | None:
        """An open descriptor of *name*'s committed copy and its sidecar, or
        None (no copy, or a damaged one, which is dropped)."""
        try:
            fd = os.open(self._layout.data_path(name), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cache copy of %s unreadable, using the remote: %s", name, exc)
            return None
        try:
            st = os.fstat(fd)
            meta = self._layout.read_meta(name)
            if (
                meta is None
                or meta.size != st.st_size
                or (hash is not None and meta.sha384 not in (None, hash))
            ):
                self._drop_damaged(name, st.st_ino)
                os.close(fd)
                return None
            self._touch(name, fd, st.st_mtime_ns)
        except BaseException:
            os.close(fd)
            raise
        return fd, meta

    def _hit(
        self, name: str, hash: str | None, fd: int, meta: Meta, *, prefetch: bool
    ) -> tuple[BinaryIO, int] | None:
        """The reader of a found copy (None for a prefetch: nothing to do)."""
        if prefetch:
            os.close(fd)
            return None
        self._counters.add("hits")
        if not self._verify_reads:
            self._counters.add("cache_bytes", meta.size)
            return os.fdopen(fd, "rb"), meta.size
        remote = RemoteCursor(name, meta.size, self._opener(name, hash), self._counters)
        reader = CachedReader(
            fd,
            meta,
            remote,
            self._counters,
            on_corrupt=lambda ino: self._drop_damaged(name, ino),
        )
        return reader, meta.size

    def _lead(self, fill: Fill, prefetch: bool) -> tuple[BinaryIO, int] | None:
        """Open the remote object and start filling it (or bypass the cache)."""
        name = fill.name
        # A fill commits before it leaves _fills: one that finished since our
        # first look is found now, not fetched again.
        try:
            found = self._find_copy(name, fill.hash)
        except BaseException as exc:
            self._end(fill, FillState.FAILED, exc)
            raise
        if found is not None:
            self._end(fill, FillState.DONE)
            return self._hit(name, fill.hash, *found, prefetch=prefetch)
        try:
            stream, size = self._opener(name, fill.hash)()
        except BaseException as exc:
            self._end(fill, FillState.FAILED, exc)
            raise
        self._counters.add("prefetches" if prefetch else "misses")
        fd = None
        if self._admit(size):
            fd = self._lock_fill(name)
            if fd is None:
                self._release(size)
        if fd is not None and self._layout.committed(name):
            # Another process committed it since we looked: use that copy.
            self._layout.abandon_fill(name, fd)
            self._release(size)
            self._end(fill, FillState.DONE)
            stream.close()
            return self._open(name, fill.hash, prefetch=prefetch)
        if fd is None:  # too big, no room, or filling in another process
            self._end(fill, FillState.BYPASS)
            if prefetch:
                stream.close()
                return None
            cursor = RemoteCursor(
                name, size, self._opener(name, fill.hash), self._counters, stream
            )
            return RemoteReader(cursor, size), size
        own_fd = fill.start(fd, size)
        thread = threading.Thread(
            target=self._run_fill,
            args=(fill, stream),
            name=f"cache-fill-{name[:12]}",
            daemon=True,
        )
        try:
            thread.start()
        except BaseException as exc:  # no thread to be had: no fill either
            os.close(own_fd)
            stream.close()
            fill.abort(self._layout, exc)
            self._release(size)
            with self._lock:
                del self._fills[name]
            raise
        fill.thread = thread  # published once started: joinable
        if prefetch:
            os.close(own_fd)
            return None
        return self._tail(fill, own_fd), size

    def _follow(self, fill: Fill) -> tuple[BinaryIO, int] | None:
        """Join another thread's fill of the same object."""
        with fill.cond:
            while fill.state is FillState.OPENING:
                fill.cond.wait()
            state, error = fill.state, fill.error
        if state is FillState.RUNNING:
            fd = fill.join()
            if fd is not None:
                return self._tail(fill, fd), fill.size
            return None
        if state is FillState.BYPASS:
            opener = self._opener(fill.name, fill.hash)
            stream, size = opener()
            cursor = RemoteCursor(fill.name, size, opener, self._counters, stream)
            return RemoteReader(cursor, size), size
        if fill.size < 0 and isinstance(error, BlobStoreError):
            # The remote open failed (not found, unavailable): the same
            # answer for everyone who was waiting on it.
            raise type(error)(*error.args) from error
        return None

    def _tail(self, fill: Fill, fd: int) -> TailReader:
        remote = RemoteCursor(
            fill.name, fill.size, self._opener(fill.name, fill.hash), self._counters
        )
        return TailReader(fill, fd, remote, self._counters, self._window)

    def _opener(self, name: str, hash: str | None):
        if hash is None:
            return lambda: self.remote.open(name)
        return lambda: self.remote.open_blob(name, hash)

    def _prefetch_now(self, name: str, hash: str | None) -> None:
        try:
            self._open(name, hash, prefetch=True)
        except Exception as exc:  # only a hint: the real read will report it
            log.debug("prefetch of %s failed: %s", name, exc)
        finally:
            with self._lock:
                self._prefetchers.discard(threading.current_thread())

    # -- fills -------------------------------------------------------------

    def _run_fill(self, fill: Fill, stream: BinaryIO) -> None:
        ok = fill.run(stream, self._layout, self._counters)
        self._release(fill.size)
        if ok:
            self._committed(fill.name, fill.size)
        elif not fill.cancelled:
            self._counters.add("fill_errors")
        with self._lock:
            if self._fills.get(fill.name) is fill:
                del self._fills[fill.name]

    def _end(
        self, fill: Fill, state: FillState, error: BaseException | None = None
    ) -> None:
        """End a fill that never ran (its leader decided not to fill)."""
        fill.set_state(state, error)
        with self._lock:
            if self._fills.get(fill.name) is fill:
                del self._fills[fill.name]

    def _lock_fill(self, name: str) -> int | None:
        try:
            return self._layout.lock_fill(name)
        except OSError as exc:
            log.warning("cannot cache %s: %s", name, exc)
            return None

    def _admit(self, size: int) -> bool:
        """Reserve room for a new copy of *size* bytes, if the limits allow."""
        try:
            free = self._layout.free_bytes()
        except OSError:
            return False
        with self._lock:
            running = sum(1 for f in self._fills.values() if f.fd >= 0)
            admitted = (
                not self._closing
                and running < self._max_fills
                and self.limits.admits(size, self._usage + self._reserved, free)
            )
            if admitted:
                self._reserved += size
        if not admitted and size <= self.limits.max_object_size:
            self._evictor.request()  # make room for the next one
        return admitted

    def _release(self, size: int) -> None:
        with self._lock:
            self._reserved -= size

    def _committed(self, name: str, size: int) -> None:
        self._counters.add("fills")
        with self._lock:
            self._usage += size
            self._entries += 1
            self._last_used[name] = self._tick()
            over = self._usage > self.limits.high_bytes
        if over:
            self._evictor.request()

    # -- LRU, drops, eviction ------------------------------------------------

    def _tick(self) -> int:
        """A strictly increasing wall-clock time in ns (under _lock), so that
        accesses in quick succession still have an order."""
        self._clock = max(time.time_ns(), self._clock + 1)
        return self._clock

    def _touch(self, name: str, fd: int, mtime_ns: int) -> None:
        with self._lock:
            now = self._last_used[name] = self._tick()
        if now - mtime_ns > self._touch_ns:
            # The mtime is the LRU age other processes (and a restart) see.
            # A read-only or foreign-owned copy: keep serving it anyway.
            with contextlib.suppress(OSError):
                os.utime(fd, ns=(now, now))

    def _drop_damaged(self, name: str, inode: int) -> None:
        try:
            size = self._layout.delete(name, only_inode=inode)
        except OSError as exc:
            log.warning("cannot drop damaged cache copy of %s: %s", name, exc)
            return
        if size >= 0:
            log.warning("cache copy of %s was damaged: dropped", name)
            self._counters.add("corrupt")
            self._dropped(name, size)

    def _forget(self, name: str) -> None:
        """Drop *name* from the cache (it was removed or replaced)."""
        with self._lock:
            fill = self._fills.get(name)
        if fill is not None:
            fill.cancel()
        try:
            size = self._layout.delete(name)
        except OSError as exc:
            raise Unavailable(f"cannot drop cache copy of {name}: {exc}") from exc
        if size >= 0:
            self._dropped(name, size)

    def _dropped(self, name: str, size: int) -> None:
        with self._lock:
            self._usage -= size
            self._entries -= 1
            self._last_used.pop(name, None)

    def _evict_pass(self) -> None:
        """Rescan the directory and evict LRU copies if over the limits."""
        entries = list(self._layout.scan())
        usage = sum(e.size for e in entries)
        with self._lock:
            self._usage, self._entries = usage, len(entries)
            present = {e.name for e in entries} | set(self._fills)
            for name in [n for n in self._last_used if n not in present]:
                del self._last_used[name]
            last_used = dict(self._last_used)
        free = self._layout.free_bytes()
        if not self.limits.must_evict(usage, free):
            return
        lock = self._layout.lock_eviction()
        if lock is None:
            return  # another process is evicting; our next scan sees it
        try:
            entries.sort(key=lambda e: max(e.mtime_ns, last_used.get(e.name, 0)))
            for entry in entries:
                if self.limits.evicted_enough(usage, free):
                    break
                size = self._layout.delete(entry.name)
                if size < 0:
                    continue  # gone already (removed, or another evictor)
                usage -= size
                free += size
                self._counters.add("evictions")
                self._counters.add("evicted_bytes", size)
                self._dropped(entry.name, size)
        finally:
            os.close(lock)


class _Evictor:
    """The background thread that runs eviction passes: on request, and
    every *interval* seconds. Requests never wait for it."""

    def __init__(self, evict_pass, interval: float) -> None:
        self._pass = evict_pass
        self._interval = interval
        self._cond = threading.Condition()
        self._requested = 1  # the first pass (the initial scan) runs at once
        self._done = 0
        self._closing = False
        self._thread = threading.Thread(
            target=self._run, name="cache-evictor", daemon=True
        )
        self._thread.start()

    def request(self) -> int:
        with self._cond:
            self._requested += 1
            self._cond.notify_all()
            return self._requested

    def run_and_wait(self, timeout: float) -> bool:
        """Request a pass and wait for it to finish; False on timeout."""
        gen = self.request()
        with self._cond:
            return self._cond.wait_for(
                lambda: self._done >= gen or self._closing, timeout
            )

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._closing or self._requested > self._done,
                    self._interval,
                )
                if self._closing:
                    return
                gen = self._requested
            try:
                self._pass()
            except Exception:  # keep evicting later; say why now
                log.exception("cache eviction pass failed")
            with self._cond:
                self._done = gen
                self._cond.notify_all()
