"""Backends: where blob bytes live. See :mod:`blobstore.backends.base`."""

from blobstore.backends.base import Backend
from blobstore.backends.base import ObjectInfo
from blobstore.backends.base import check_name

__all__ = ["Backend", "ObjectInfo", "check_name"]
