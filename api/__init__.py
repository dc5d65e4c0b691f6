"""blobstore's HTTP service (import name ``blobstore_api``; source in ``api/``).

It calls only the library's :class:`blobstore.Store` (and the configuration
in :mod:`blobstore.config`), never a backend or catalog directly, and the
library never imports it:

* ``app.py``       -- ``create_app(store, settings)``: the WSGI application. It
  dispatches each request to the native API or, when ``[s3] enabled``, to the
  S3 façade (requests signed with AWS SigV4, or outside the native paths).
* ``native/``      -- the resources: ``/v1/blobs``, ``/v1/uploads``,
  ``/v1/refs``, ``/v1/stats``, ``/healthz``, ``/readyz``; ``openapi.yaml``
  documents them.
* ``errors.py``    -- one Falcon error handler per domain error class.
* ``auth.py``      -- bearer tokens with read / read-write / admin access.
* ``metrics.py``   -- ``/metrics`` (Prometheus, summed across workers).
* ``streaming.py`` -- request and response bodies in bounded chunks, ranges,
  ``sendfile`` for files.
* ``s3/``          -- the S3 façade: ``create_s3_app(store, config) -> falcon.App``.
* ``cli.py``, ``commands/`` -- the ``blobstore`` command (one module per
  subcommand); ``server.py`` runs gunicorn; ``wsgi.py`` is the entry point
  for other WSGI servers.
"""
