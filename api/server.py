"""Running the service under gunicorn: options, TLS, process environment.

``blobstore serve`` (:func:`serve`) and ``config/gunicorn.conf.py`` share
:func:`gunicorn_options`, so both run the same way: ``gthread`` workers
(threads, so a slow multi-gigabyte upload does not block other requests),
access log on stdout, TLS 1.2+ with AEAD ciphers only when ``[server]
certfile``/``keyfile`` are set.

Two things must be in the environment *before* the process starts, so
:func:`serve` re-executes itself once with them set (same PID, same
arguments):

* ``GLIBC_TUNABLES`` with larger malloc trim and mmap thresholds. glibc reads
  tunables only at process start. With its defaults, every 1 MiB body chunk is
  a fresh ``mmap`` (or a heap top that is trimmed and grown again), so reading
  a large body page-faults on every chunk; the raised thresholds let freed
  chunks be reused.
* ``PROMETHEUS_MULTIPROC_DIR``, a fresh temporary directory, so ``/metrics``
  adds up all workers (``prometheus_client`` reads it at import).

Both per-request files live in memory (``/dev/shm``) where the system has it:
gunicorn's worker heartbeat (a ``utime`` on a temporary file, several times
a request) and the metrics' memory-mapped counters. On a disk-backed
``/tmp`` either may wait behind the journal while a put's ``fsync`` runs,
which strace and py-spy showed on every small PUT.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import ssl
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from blobstore.config import Settings
from blobstore.config import build_store
from blobstore.config import require_safe_bind
from blobstore_api.worker import Worker

__all__ = [
    "MALLOC_TUNABLES",
    "TLS_CIPHERS",
    "gunicorn_options",
    "serve",
    "ssl_context",
    "with_malloc_tunables",
]

log = logging.getLogger("blobstore.serve")

#: glibc malloc tunables for the workers (bytes). The mmap threshold is above
#: the 1 MiB chunks bodies are read in, so they come from the heap; the trim
#: threshold keeps freed chunks there for the next read instead of returning
#: them to the kernel and faulting them in again.
MALLOC_TUNABLES = {
    "glibc.malloc.mmap_threshold": str(4 * 1024 * 1024),
    "glibc.malloc.trim_threshold": str(64 * 1024 * 1024),
}

#: TLS 1.2 suites with forward secrecy and AEAD (GCM, ChaCha20-Poly1305);
#: TLS 1.3 suites are all AEAD and are enabled separately by OpenSSL.
TLS_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL"

#: Set by :func:`serve` on the temporary metrics directory it created and
#: must remove at exit.
_OWNED_METRICS_DIR = "BLOBSTORE_SERVE_METRICS_DIR"


def ssl_context(
    conf: Any, default_ssl_context_factory: Callable[[], ssl.SSLContext]
) -> ssl.SSLContext:
    """gunicorn's ``ssl_context`` hook: TLS 1.2 or later, AEAD ciphers only."""
    context = default_ssl_context_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


def _child_exit(server: Any, worker: Any) -> None:
    """A worker exited: fold its live gauges out of the multiprocess files."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def _worker_exit(server: Any, worker: Any) -> None:
    from blobstore_api.app import close_stores

    close_stores()


#: Where the per-request temporary files go when it exists (see above).
_MEMORY_TMPDIR = "/dev/shm"


def memory_tmpdir() -> str | None:
    """A writable in-memory directory for per-request files, or None."""
    if os.path.isdir(_MEMORY_TMPDIR) and os.access(_MEMORY_TMPDIR, os.W_OK | os.X_OK):
        return _MEMORY_TMPDIR
    return None


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """gunicorn settings for *settings* (names as in a gunicorn config file)."""
    server = settings.server
    options: dict[str, Any] = {
        "bind": [server.bind],
        "workers": server.workers,
        "threads": server.threads,
        "worker_class": Worker.configured(settings),
        "proc_name": "blobstore",
        "accesslog": "-",
        "errorlog": "-",
        "keepalive": 5,
        # Only the master's control socket: several services on one machine
        # (tests, benchmarks) would otherwise share ~/.gunicorn/gunicorn.ctl.
        "control_socket_disable": True,
        "child_exit": _child_exit,
        "worker_exit": _worker_exit,
    }
    tmpdir = memory_tmpdir()
    if tmpdir:
        options["worker_tmp_dir"] = tmpdir
    if server.tls:
        options.update(
            certfile=server.certfile, keyfile=server.keyfile, ssl_context=ssl_context
        )
    return options


def with_malloc_tunables(current: str | None) -> str:
    """*current* ``GLIBC_TUNABLES`` plus ours, keeping any the user set."""
    items = [item for item in (current or "").split(":") if item]
    present = {item.split("=", 1)[0] for item in items}
    items += [f"{k}={v}" for k, v in MALLOC_TUNABLES.items() if k not in present]
    return ":".join(items)


def _process_env() -> dict[str, str] | None:
    """The environment to re-execute with, or None if this one is ready."""
    env = dict(os.environ)
    if platform.libc_ver()[0] == "glibc":
        env["GLIBC_TUNABLES"] = with_malloc_tunables(env.get("GLIBC_TUNABLES"))
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        path = tempfile.mkdtemp(prefix="blobstore-metrics-", dir=memory_tmpdir())
        env["PROMETHEUS_MULTIPROC_DIR"] = env[_OWNED_METRICS_DIR] = path
    return env if env != os.environ else None


def _reexec(env: dict[str, str]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    # sys.orig_argv is how this interpreter was started (the console script
    # or "-m blobstore_api"), so the new process runs the same command.
    os.execve(sys.executable, sys.orig_argv, env)


def check_service(settings: Settings) -> None:
    """Build the store and the application once, and close them: backend,
    catalog and cache options are checked by their own constructors, the
    ``[s3]`` table by the façade, all before gunicorn binds or forks a
    worker (a worker that failed there would crash in a loop instead).

    :raises ConfigError: a table the implementation refuses.
    :raises Unavailable: storage that cannot be reached or created.
    """
    from blobstore_api.app import create_app

    store = build_store(settings)
    try:
        create_app(store, settings)
    finally:
        store.close()


def _announce(settings: Settings) -> None:
    """Say what is served, and warn of what an operator would regret."""
    facades = "the native API and S3" if settings.s3_enabled else "the native API"
    log.info(
        "blobstore serving %s on %s (%s catalog, %s backend, config: %s)",
        facades,
        settings.server.bind,
        settings.catalog.get("type"),
        settings.backend.get("type"),
        settings.source,
    )
    if settings.auth.open:
        log.warning(
            "no [auth] tokens are configured: every client has admin access "
            "(allowed on a loopback address only)"
        )
    for section, table in (("s3", settings.s3), ("cache", settings.cache)):
        if table and "enabled" not in table:
            log.warning("[%s] has settings but no 'enabled = true': it is off", section)


def serve(settings: Settings) -> None:
    """Validate, then run the service in the foreground until stopped.

    :raises ConfigError: bad settings (nothing has started).
    :raises Unavailable: the store cannot be created.
    """
    require_safe_bind(settings)
    check_service(settings)
    env = _process_env()
    if env is not None:
        _reexec(env)  # does not return
    _announce(settings)
    owned = os.environ.get(_OWNED_METRICS_DIR)
    try:
        _Application(settings).run()
    finally:
        if owned and owned == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            shutil.rmtree(owned, ignore_errors=True)


class _Application(BaseApplication):
    """gunicorn's programmatic entry: settings in, the WSGI app per worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for name, value in gunicorn_options(self.settings).items():
            if name in self.cfg.settings:  # older gunicorns lack some
                self.cfg.set(name, value)

    def load(self) -> Any:
        # Runs in each worker after fork: every worker opens its own catalog
        # and backend connections.
        from blobstore_api.app import build_application

        return build_application(self.settings)
