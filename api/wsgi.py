"""The WSGI entry point for running under a WSGI server of your choice::

    BLOBSTORE_CONFIG=config/production.toml \\
        gunicorn -c config/gunicorn.conf.py blobstore_api.wsgi:application

Importing this module reads the configuration (``BLOBSTORE_CONFIG`` and the
``BLOBSTORE_*`` variables) and builds the store and the application. Each
gunicorn worker imports it after fork, so each has its own connections.
(``blobstore serve`` does not import it; it calls
:func:`blobstore_api.app.build_application` itself.)
"""

from __future__ import annotations

from blobstore.config import load_settings
from blobstore_api.app import build_application

__all__ = ["application"]

application = build_application(load_settings())
