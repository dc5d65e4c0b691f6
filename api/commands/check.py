"""``blobstore check``: re-read every blob and verify its hash and size.

See :mod:`blobstore.checker` for what is checked and what quarantining does.
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
from blobstore_api.commands._ops import human_bytes
from blobstore_api.commands._ops import human_duration
from blobstore_api.commands._ops import open_store
from blobstore_api.commands._ops import output_options
from blobstore_api.commands._ops import table

__all__ = ["check", "register"]

log = logging.getLogger("blobstore.check")


@click.command()
@config_options
@click.option(
    "--hash", "blob_hash", metavar="SHA384", help="Check this blob (its parts) only."
)
@click.option(
    "--quarantine",
    is_flag=True,
    help="Delete the catalog record of each corrupt or missing blob, so it "
    "is no longer served and a client's next put restores it.",
)
@output_options
def check(
    config: str | None,
    data_dir: str | None,
    blob_hash: str | None,
    quarantine: bool,
    as_json: bool,
    log_format: str,
) -> None:
    """Verify stored blobs by reading them back (hash and size).

    Backends with redundancy heal what they can first. Exit status: 0 every
    blob reads back right, 1 problems found (or the check failed), 75 another
    quarantining check is running.
    """
    from blobstore.checker import check as run_check

    settings = settings_or_exit(config, data_dir)
    with command_logging(log_format):
        store = open_store(settings)
        try:
            with failing_as("check failed"), ProgressBar() as bar:
                report = run_check(
                    store,
                    blob_hash,
                    quarantine=quarantine,
                    progress=lambda r, h: bar.set("check", r.checked, r.total),
                )
        finally:
            store.close()
    doc = report.to_dict()
    if as_json:
        emit(doc)
    else:
        _print_summary(doc, quarantine)
    raise SystemExit(0 if report.clean else EXIT_FAILURE)


def _print_summary(doc: dict[str, Any], quarantine: bool) -> None:
    state = "clean" if doc["clean"] else "PROBLEMS FOUND"
    click.echo(f"check done in {human_duration(doc['duration'])}: {state}")
    table(
        [
            ("blobs checked", doc["checked"]),
            ("read back right", doc["ok"]),
            ("bytes read", human_bytes(doc["bytes_read"])),
            ("healed", len(doc["healed"])),
            ("corrupt", doc["corrupt"]),
            ("missing", doc["missing"]),
            ("unreadable", doc["unreadable"]),
        ]
    )
    for h in doc["healed"]:
        click.echo(f"healed: {h}")
    for p in doc["problems"]:
        line = f"{p['kind']}: {p['hash']}: {p['detail']}"
        if p["composites"]:
            line += f" (part of {', '.join(p['composites'])})"
        if p["quarantined"]:
            line += " [quarantined]"
        elif quarantine:
            line += f" [kept: {p['kept']}]"
        click.echo(line)


def register(group: click.Group) -> None:
    group.add_command(check)
