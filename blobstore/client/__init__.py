"""A Python client for a blobstore service's native API.

::

    from blobstore.client import Client

    with Client("http://127.0.0.1:8080", token="...") as blobs:
        result = blobs.put(b"hello")                 # PutResult(hash, size, created)
        with blobs.open(result.hash) as reader:      # seekable, fetched on demand
            reader.seek(1)
            reader.read(3)                           # b"ell"
        blobs.put_ref("releases/1.0", result.hash)   # pin it against GC
        whole = blobs.upload_file("big.iso", concurrency=8)  # parallel, resumable

Where it overlaps :class:`blobstore.Store` it takes the same arguments and
raises the same :mod:`blobstore.errors` classes (see :mod:`.client`).
Modules: :mod:`.http` (session, retries), :mod:`.errors` (answers to
exceptions), :mod:`.reader` (ranged reads), :mod:`.upload` (multipart).
"""

from blobstore.client.client import Client
from blobstore.client.http import Retry
from blobstore.client.reader import RemoteReader

__all__ = ["Client", "RemoteReader", "Retry"]
