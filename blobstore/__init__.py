"""blobstore: a content-addressed blob store (SHA-384), as a Python library.

Start with :class:`blobstore.Store`; errors are in :mod:`blobstore.errors`.
"""

from blobstore import errors
from blobstore.collector import GCStats
from blobstore.hashing import check_hash
from blobstore.hashing import hash_bytes
from blobstore.records import MultipartIndex
from blobstore.records import PutResult
from blobstore.store import Store

__all__ = [
    "GCStats",
    "MultipartIndex",
    "PutResult",
    "Store",
    "check_hash",
    "errors",
    "hash_bytes",
]
__version__ = "0.1.0"
