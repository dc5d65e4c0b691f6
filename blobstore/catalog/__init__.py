"""Catalogs: the metadata of the store. See :mod:`blobstore.catalog.base`."""

from blobstore.catalog.base import Catalog
from blobstore.records import BlobRecord
from blobstore.records import MultipartIndex
from blobstore.records import UploadRecord

__all__ = ["BlobRecord", "Catalog", "MultipartIndex", "UploadRecord"]
