"""``blobstore gc``: one garbage-collection pass, for cron and friends.

The pass itself is :func:`blobstore.collector.collect` (through
:meth:`Store.gc <blobstore.Store.gc>`); this command adds what a scheduled
job needs around it: the grace period from config or ``--grace``, stale S3
multipart uploads, the configured ref sources, a progress bar on a terminal,
a summary (``--json``: one object), structured logs and exit codes a
scheduler understands (see ``gc/`` for the cron, systemd and Kubernetes
files that run it).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any

import click

from blobstore_api.commands import EXIT_FAILURE
from blobstore_api.commands import EXIT_TEMPFAIL
from blobstore_api.commands import config_options
from blobstore_api.commands import exit_code
from blobstore_api.commands import settings_or_exit
from blobstore_api.commands._ops import ProgressBar
from blobstore_api.commands._ops import command_logging
from blobstore_api.commands._ops import emit
from blobstore_api.commands._ops import human_bytes
from blobstore_api.commands._ops import human_duration
from blobstore_api.commands._ops import open_store
from blobstore_api.commands._ops import output_options
from blobstore_api.commands._ops import s3_multipart_expiry
from blobstore_api.commands._ops import table

if TYPE_CHECKING:
    from blobstore import Store
    from blobstore.config import GCSettings

__all__ = ["gc", "register"]

log = logging.getLogger("blobstore.gc")


@click.command()
@config_options
@click.option(
    "--grace",
    metavar="DURATION",
    help="Keep blobs put less than this long ago, referenced or not "
    '(default: [gc] grace, else 30m; e.g. "30m", "2h", 0).',
)
@click.option(
    "--dry-run", is_flag=True, help="Count what would be removed; remove nothing."
)
@output_options
def gc(
    config: str | None,
    data_dir: str | None,
    grace: str | None,
    dry_run: bool,
    as_json: bool,
    log_format: str,
) -> None:
    """Run one garbage-collection pass.

    Removes expired native uploads and stale S3 multipart uploads, then every
    blob that nothing references (named refs, uploads, S3 objects,
    composites, the [gc] ref_sources) and that was put before now minus the
    grace period, then orphan backend objects. Only one pass runs at a time
    across all nodes (a lease in the catalog).

    Exit status: 0 done, 1 failed (nothing referenced is ever deleted),
    75 another pass holds the lease.
    """
    settings = settings_or_exit(config, data_dir, {"gc": {"grace": grace}})
    expiry = s3_multipart_expiry(settings)
    with command_logging(log_format):
        store = open_store(settings)
        try:
            code, doc = _run(store, settings.gc, expiry, dry_run)
        finally:
            store.close()
    if as_json:
        emit(doc)
    elif code == 0:
        _print_summary(doc)
    else:
        click.echo(f"blobstore: gc {doc['status']}: {doc['error']}", err=True)
    raise SystemExit(code)


def _run(
    store: Store, settings: GCSettings, expiry: timedelta, dry_run: bool
) -> tuple[int, dict[str, Any]]:
    from blobstore.clock import utcnow
    from blobstore.errors import BlobStoreError
    from blobstore.s3.gc import StaleS3Uploads
    from blobstore.s3.objects import ObjectStore

    started = time.monotonic()
    before = utcnow() - settings.grace
    base = {"grace_seconds": settings.grace.total_seconds(), "dry_run": dry_run}
    try:
        total = store.stats()
        sweep_total = total.blobs + total.composites
        with ProgressBar() as bar:

            def tick(phase: str, n: int) -> None:
                bar.set(phase, n, sweep_total if phase == "sweep" else None)

            store.add_gc_expiry(
                StaleS3Uploads(ObjectStore(store, multipart_expiry=expiry))
            )
            stats = store.gc(
                before=before,
                dry_run=dry_run,
                progress=tick,
                lease_ttl=settings.lease_ttl,
            )
    except BlobStoreError as exc:
        code = exit_code(exc)
        if code == EXIT_TEMPFAIL:
            log.info("gc not run: %s", exc)
            return code, _failure(base, "busy", exc, started)
        log.error("gc failed: %s", exc)
        return code, _failure(base, "failed", exc, started)
    except Exception as exc:  # unexpected: keep the traceback in the log
        log.exception("gc failed")
        return EXIT_FAILURE, _failure(base, "failed", exc, started)
    doc = {
        **base,
        **stats.to_dict(),
        "status": "done",
        "referenced": stats.count,
    }
    if not dry_run:
        _purge_trash(store)
    return 0, doc


def _purge_trash(store: Store) -> None:
    """Empty a backend's trash now, so the space is free when the job ends
    (the erasure backend moves removed objects there and purges them in the
    background, which a short-lived process would not wait for)."""
    from blobstore.errors import BlobStoreError

    try:
        purged = store.purge_trash()
    except (BlobStoreError, OSError) as exc:  # the service's purger retries
        log.warning("cannot empty the backend's trash: %s", exc)
    else:
        log.info("emptied the backend's trash (%d entries)", purged)


def _failure(
    base: dict[str, Any], status: str, exc: BaseException, started: float
) -> dict[str, Any]:
    return {
        **base,
        "status": status,
        "error": f"{exc}" if status == "busy" else f"{type(exc).__name__}: {exc}",
        "duration": round(time.monotonic() - started, 3),
    }


def _print_summary(doc: dict[str, Any]) -> None:
    what = "dry run (nothing removed)" if doc["dry_run"] else "done"
    click.echo(
        f"gc {what} in {human_duration(doc['duration'])}: "
        f"cut-off {doc['before']} (grace {human_duration(doc['grace_seconds'])})"
    )
    table(
        [
            (
                "uploads expired",
                f"{doc.get('uploads_expired', 0)} native, "
                f"{doc.get('s3_uploads_expired', 0)} S3",
            ),
            ("blobs scanned", doc["scanned"]),
            ("referenced", doc["referenced"]),
            ("deleted", doc["deleted"]),
            (
                "bytes reclaimed",
                f"{human_bytes(doc['reclaimed_bytes'])} ({doc['reclaimed_bytes']})",
            ),
            (
                "orphans swept",
                f"{doc['orphans_swept']} ({human_bytes(doc['orphan_bytes'])})",
            ),
            ("errors", doc["errors"]),
        ]
    )


def register(group: click.Group) -> None:
    group.add_command(gc)
