"""A read-through local-disk cache in front of a remote backend (Swift, GridFS).

Blobs are immutable, so a local copy never goes stale: hot blobs are served
from local disk instead of the remote cluster. The service builds it from the
``[cache]`` config table with :func:`wrap_with_cache`::

    from blobstore.backends.cache import wrap_with_cache

    backend = wrap_with_cache(backend_from_config(cfg["backend"]), cfg.get("cache"))
    store = Store(catalog, backend)

    [cache]
    enabled = true                 # off by default (no table = off)
    path = "/var/cache/blobstore"  # a local directory; workers may share it
    max_size = "50GiB"             # bytes of content to keep (int or "10GiB")
    high_water = 0.90              # evict when usage passes this ...
    low_water = 0.80               # ... down to this (fractions of max_size)
    min_free = "1GiB"              # also evict when the disk has less free
    keep_on_put = true             # keep a copy of what is written
    # max_object_size = max_size / 4; verify_reads = true; max_fills = 8

:func:`wrap_with_cache` returns the backend unchanged when the cache is
disabled, and raises :class:`~blobstore.errors.BadParams` naming the key for a
bad table. :class:`CacheBackend` is the Backend contract over the remote:

* **Writes** go to the remote (write-through); with ``keep_on_put`` a copy is
  kept while streaming (a cache problem never fails the put).
* **Hits** read the local copy, each block checked against a CRC-32 recorded
  when it was filled; a damaged copy is dropped and the read continues from
  the remote. (``verify_reads = false`` gives plain files, for ``sendfile``.)
* **Misses** stream from the remote to the reader while one background fill
  per object copies it to a temp file, checks its size and, when the Store
  says which blob it is (:meth:`~blobstore.backends.base.Backend.open_blob`),
  its SHA-384, and only then renames it into place. Concurrent readers of the
  object share the fill (single flight) and read what it has written so far;
  a reader that seeks far ahead (a range request) reads the remote directly
  instead of waiting. Across processes, one fill per object (``flock``); the
  other processes' readers use the remote until the copy is committed.
* **Prefetch**: reading part *k* of a composite blob starts filling part
  *k+1* in the background (:meth:`~blobstore.backends.base.Backend.prefetch`).
* **Eviction** of least recently used copies runs in a background thread,
  when usage passes ``high_water`` or free space drops below ``min_free``;
  requests never wait for it. The directory is the index: a restart (or
  another worker) sees the same copies, and leftovers of crashed fills are
  removed.
* **Remote down**: cached objects still read; anything else gets the
  remote's :class:`~blobstore.errors.Unavailable` (HTTP 503). ``remove``
  removes the copy too; ``list``, ``check`` and ``stats`` go to the remote
  (``stats`` adds ``"cache"``: counters and sizes, also exported to
  Prometheus when ``prometheus_client`` is installed).

Modules: :mod:`.layout` (the directory and its cross-process rules),
:mod:`.fill` (copying in), :mod:`.readers`, :mod:`.limits`, :mod:`.metrics`,
:mod:`.backend`, :mod:`.config`.
"""

from blobstore.backends.cache.backend import CacheBackend
from blobstore.backends.cache.config import wrap_with_cache
from blobstore.backends.cache.limits import parse_size

__all__ = ["CacheBackend", "parse_size", "wrap_with_cache"]
