"""The S3 façade: path-style S3 with SigV4 over the same Store.

``create_s3_app(store, config)`` builds the WSGI application (see
:mod:`blobstore_api.s3.app`). Modules, one job each:

* ``sigv4``      -- signature verification (header and presigned)
* ``payload``    -- request bodies as verified streams; ``chunked`` decodes
  ``aws-chunked``; ``checksums`` the ``x-amz-checksum-*`` algorithms
* ``errors``     -- S3 error classes and their XML rendering
* ``xml``        -- response documents and request parsing
* ``routes``     -- which handler serves a request
* ``buckets``, ``objects``, ``listing``, ``multipart`` -- the handlers
* ``conditions`` -- conditional requests and ranges; ``metadata`` -- headers
"""

from blobstore_api.s3.app import create_s3_app

__all__ = ["create_s3_app"]
