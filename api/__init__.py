"""blobstore's HTTP service (import name ``blobstore_api``; source in ``api/``).

It calls only the library (``blobstore``), never a backend or catalog
directly, and the library never imports it:

* ``app.py``     -- ``create_app(store, settings)``: the WSGI application. It
  dispatches each request to the native API or, when ``[s3] enabled``, to the
  S3 façade (requests signed with AWS SigV4, or outside the native paths).
* ``native/``    -- ``/v1/blobs``, ``/v1/uploads``, ``/v1/refs``, ``/v1/stats``,
  ``/v1/admin``, ``/healthz``, ``/readyz``, ``/metrics``.
* ``s3/``        -- the S3 façade: ``create_s3_app(store, config) -> falcon.App``.
* ``cli.py``     -- the ``blobstore`` command (``serve``, operator commands).
"""
