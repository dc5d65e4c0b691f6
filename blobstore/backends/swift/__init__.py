"""OpenStack Swift backend (``type = "swift"``), on python-swiftclient.

The package is split by job: :mod:`.config` (the ``[backend]`` table),
:mod:`.pool` (pooled connections sharing one token; Swift errors mapped to
blobstore's), :mod:`.upload` (streaming puts, Static Large Objects),
:mod:`.reader` (lazy ranged reads) and :mod:`.backend` (the Backend itself;
its docstring describes how each operation maps onto Swift).
"""

from __future__ import annotations

from blobstore.backends.swift.backend import SwiftBackend

__all__ = ["SwiftBackend"]
