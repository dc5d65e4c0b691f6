"""The WSGI application the real-client tests serve with gunicorn.

Configured by environment variables (set by :class:`tests.s3.realserver.S3Server`):
``BLOBSTORE_TEST_DATA`` (a directory: SQLite catalog + ``local`` backend) and
``BLOBSTORE_TEST_S3`` (the ``[s3]`` table as JSON). Serve it with
``gunicorn tests.s3.server:app``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from blobstore import Store
from blobstore.backends.local import LocalBackend
from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore_api.s3 import create_s3_app

_data = Path(os.environ["BLOBSTORE_TEST_DATA"])
store = Store(SQLiteCatalog(_data / "catalog.db"), LocalBackend(_data / "blobs"))
app = create_s3_app(store, json.loads(os.environ["BLOBSTORE_TEST_S3"]))
