"""``blobstore heal``: rebuild missing or corrupt erasure shards.

Runs :meth:`Store.heal <blobstore.Store.heal>` over every object the backend
holds (a deep scan: every shard block is read and checked) or over one blob
(``--hash``: a composite's parts). Safe alongside a running service; nothing
is locked. The summary names, by blob hash where a record points at the
object, what is still *degraded* (shards on offline drives could not be
rebuilt yet) and what is *unrecoverable* (fewer than k good shards).

Exit status: 0 every blob scanned is whole, 1 something is degraded,
unrecoverable or failed, 2 the backend has no redundancy to heal.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from blobstore_api.commands import EXIT_FAILURE
from blobstore_api.commands import config_options
from blobstore_api.commands import failing_as
from blobstore_api.commands import settings_or_exit
from blobstore_api.commands._ops import ProgressBar
from blobstore_api.commands._ops import command_logging
from blobstore_api.commands._ops import emit
from blobstore_api.commands._ops import human_duration
from blobstore_api.commands._ops import open_store
from blobstore_api.commands._ops import output_options
from blobstore_api.commands._ops import table

__all__ = ["heal", "register"]

log = logging.getLogger("blobstore.heal")


@click.command()
@config_options
@click.option("--hash", "blob_hash", metavar="SHA384", help="Heal this blob only.")
@output_options
def heal(
    config: str | None,
    data_dir: str | None,
    blob_hash: str | None,
    as_json: bool,
    log_format: str,
) -> None:
    """Rebuild missing or corrupt erasure shards of every blob (or one).

    Exit status: 0 all whole, 1 something degraded or unrecoverable,
    2 the backend keeps no redundancy to heal from.
    """
    import time

    from blobstore.jobs import heal_summary

    settings = settings_or_exit(config, data_dir)
    with command_logging(log_format):
        store = open_store(settings)
        try:
            started = time.monotonic()
            with failing_as("heal failed"):
                with ProgressBar() as bar:
                    report = store.heal(
                        blob_hash,
                        progress=lambda r, name: bar.set("heal", r.scanned, r.total),
                    )
                doc = heal_summary(store, report, time.monotonic() - started)
        finally:
            store.close()
    if as_json:
        emit(doc)
    else:
        _print_summary(doc)
    raise SystemExit(0 if report.ok else EXIT_FAILURE)


def _print_summary(doc: dict[str, Any]) -> None:
    state = "all whole" if doc["ok"] else "problems remain"
    click.echo(f"heal done in {human_duration(doc['duration'])}: {state}")
    table(
        [
            ("scanned", f"{doc['scanned']} of {doc['total']}"),
            ("healthy", doc["healthy"]),
            ("healed", f"{doc['healed']} ({doc['shards_rebuilt']} shards rebuilt)"),
            ("degraded", len(doc["degraded"])),
            ("unrecoverable", len(doc["unrecoverable"])),
            ("errors", len(doc["errors"])),
        ]
    )
    hashes = doc["hashes"]
    for kind in ("degraded", "unrecoverable"):
        for name in doc[kind]:
            click.echo(f"{kind}: blob {hashes.get(name, '(no record)')} ({name})")
    for error in doc["errors"]:
        click.echo(f"error: {error}")


def register(group: click.Group) -> None:
    group.add_command(heal)
