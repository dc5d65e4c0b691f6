"""``type = "local"``: one directory, no parity -- the erasure-posix backend
with a single drive.

There is one code path for bytes on local disks: ``LocalBackend(path)`` is
``ErasureBackend(drives=[path], parity=0)``. With one data shard and no
parity the shard file *is* the blob, byte for byte (checksums live beside it
in the ``.meta`` file), so a put costs a plain file write plus fsync and a
read can be served with ``sendfile``. See
:mod:`blobstore.backends.erasure.backend` for the layout on disk.
"""

from __future__ import annotations

import os
from typing import Any

from blobstore.backends.erasure.backend import ErasureBackend

__all__ = ["LocalBackend"]


class LocalBackend(ErasureBackend):
    """Blobs as files under one directory (an erasure set of one drive)."""

    type_name = "local"

    def __init__(self, path: str | os.PathLike[str], **options: Any) -> None:
        super().__init__([path], parity=0, **options)
