"""The catalogs and backends the Store suite runs over.

Each factory takes a pytest ``tmp_path`` and returns a fresh, empty instance.
A new catalog or backend adds itself here and the whole Store suite runs
against it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from blobstore.backends.base import Backend
from blobstore.backends.cache import CacheBackend
from blobstore.backends.local import LocalBackend
from blobstore.backends.memory import MemoryBackend
from blobstore.catalog.base import Catalog
from blobstore.catalog.sqlite import SQLiteCatalog

CATALOGS: dict[str, Callable[[Path], Catalog]] = {
    "sqlite": lambda tmp: SQLiteCatalog(tmp / "catalog.db"),
}

BACKENDS: dict[str, Callable[[Path], Backend]] = {
    "memory": lambda tmp: MemoryBackend(),
    "local": lambda tmp: LocalBackend(tmp / "blobs"),
    # The read cache in front of a remote: every Store behaviour still holds.
    "cache": lambda tmp: CacheBackend(
        LocalBackend(tmp / "remote"), tmp / "cache", 1 << 30, min_free=0
    ),
}
