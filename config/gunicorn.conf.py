"""gunicorn configuration for running the WSGI app directly::

    export BLOBSTORE_CONFIG=config/production.toml
    export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4194304
    GLIBC_TUNABLES=$GLIBC_TUNABLES:glibc.malloc.trim_threshold=67108864
    gunicorn -c config/gunicorn.conf.py blobstore_api.wsgi:application

It applies the same settings as ``blobstore serve`` (bind, workers, threads,
TLS and timeouts from ``[server]``; blobstore's gthread worker; access log
on stdout), read from ``BLOBSTORE_CONFIG`` and the ``BLOBSTORE_*``
variables. gunicorn's own command-line options (``-b``, ``-w``) still
override it.

Two things ``blobstore serve`` does for you must be done here by hand:

* ``GLIBC_TUNABLES`` (above) must be in the environment when gunicorn
  starts; glibc reads it only at process start. Without it, reading large
  bodies in 1 MiB chunks page-faults on every chunk.
* With more than one worker, ``/metrics`` needs ``PROMETHEUS_MULTIPROC_DIR``
  set to an empty directory before gunicorn starts; this file makes a
  temporary one when it is not set.
"""

import os
import shutil
import tempfile

from blobstore.config import load_settings
from blobstore.config import require_safe_bind
from blobstore_api.server import gunicorn_options

_settings = load_settings()
require_safe_bind(_settings)
globals().update(gunicorn_options(_settings))
wsgi_app = "blobstore_api.wsgi:application"

_metrics_dir = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _metrics_dir = tempfile.mkdtemp(prefix="blobstore-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_exit(server):
    """The master is exiting: remove the metrics directory made above."""
    if _metrics_dir is not None:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
