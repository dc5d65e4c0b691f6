"""Catalogs: the metadata of the store. See :mod:`blobstore.catalog.base`."""

from blobstore.catalog.base import Catalog
from blobstore.catalog.records import BlobRecord
from blobstore.catalog.records import MultipartIndex
from blobstore.catalog.records import UploadRecord

__all__ = ["BlobRecord", "Catalog", "MultipartIndex", "UploadRecord"]
