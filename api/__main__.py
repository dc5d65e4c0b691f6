"""``python -m blobstore_api`` is the ``blobstore`` command."""

from blobstore_api.cli import main

main()
