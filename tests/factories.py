"""The catalogs and backends the Store suite runs over.

Each factory takes the test's ``tmp_path`` and its pytest ``request`` (to
reach fixtures such as ``mongo_client``) and returns a fresh, empty instance.
A new catalog or backend adds itself here and the whole Store suite runs
against it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from blobstore.backends.base import Backend
from blobstore.backends.cache import CacheBackend
from blobstore.backends.erasure import ErasureBackend
from blobstore.backends.gridfs import GridFSBackend
from blobstore.backends.local import LocalBackend
from blobstore.backends.memory import MemoryBackend
from blobstore.catalog.base import Catalog
from blobstore.catalog.mongo import MongoCatalog
from blobstore.catalog.sqlite import SQLiteCatalog

Factory = Callable[[Path, Any], Any]


def _mongo_catalog(tmp: Path, request: Any) -> MongoCatalog:
    return MongoCatalog(
        client=request.getfixturevalue("mongo_client"),
        database=request.getfixturevalue("mongo_database"),
    )


def _gridfs_backend(tmp: Path, request: Any) -> GridFSBackend:
    return GridFSBackend(
        client=request.getfixturevalue("mongo_client"),
        database=request.getfixturevalue("mongo_database"),
    )


def _swift_backend(tmp: Path, request: Any) -> Backend:
    from blobstore.backends.swift import SwiftBackend

    server = request.getfixturevalue("swift_server")
    return SwiftBackend.from_config(server.backend_config(f"t-{uuid.uuid4().hex[:12]}"))


CATALOGS: dict[str, Callable[[Path, Any], Catalog]] = {
    "sqlite": lambda tmp, request: SQLiteCatalog(tmp / "catalog.db"),
    "mongodb": _mongo_catalog,
}

BACKENDS: dict[str, Callable[[Path, Any], Backend]] = {
    "memory": lambda tmp, request: MemoryBackend(),
    "local": lambda tmp, request: LocalBackend(tmp / "blobs"),
    "gridfs": _gridfs_backend,
    "erasure-4+2": lambda tmp, request: ErasureBackend(
        [tmp / f"drive{i}" for i in range(4)], parity=2
    ),
    "swift": _swift_backend,
    # The read cache in front of a remote: every Store behaviour still holds.
    "cache": lambda tmp, request: CacheBackend(
        LocalBackend(tmp / "remote"), tmp / "cache", 1 << 30, min_free=0
    ),
}

#: Backends whose every operation is a network round trip to a real server:
#: the Store suite runs them with one catalog only (catalogs are tested
#: against every other backend).
REMOTE_BACKENDS = {"swift"}

#: The (catalog, backend) pairs the Store suite runs over.
STORE_PAIRS = [
    (c, b)
    for c in sorted(CATALOGS)
    for b in sorted(BACKENDS)
    if b not in REMOTE_BACKENDS or c == "sqlite"
]
