"""S3 in the library: buckets, objects and multipart uploads over the Store.

* :mod:`blobstore.s3.objects` -- :class:`~blobstore.s3.objects.ObjectStore`,
  the one class the S3 façade (``blobstore_api.s3``) calls.
* :mod:`blobstore.s3.rules` -- S3's naming rules and limits (pure functions).
* :mod:`blobstore.s3.listing` -- paging with S3's prefix/delimiter rules.

Nothing here speaks HTTP or XML; that is the façade's job.
"""
