"""The erasure-posix backend: Reed-Solomon shards over local drives.

See :mod:`blobstore.backends.erasure.backend` for the configuration and the
guarantees, and the README section "Erasure-coded drives" for operators.
"""

from blobstore.backends.erasure.backend import ErasureBackend
from blobstore.backends.healing import HealReport

__all__ = ["ErasureBackend", "HealReport"]
