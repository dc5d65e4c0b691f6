"""``blobstore stats``: what the store holds and how its jobs went.

Blob counts and bytes, the backend's own figures (drives: online, free
space), and the last GC pass, heal, check and quarantined blobs as recorded
in the catalog (:mod:`blobstore.jobs`). Read-only.
"""

from __future__ import annotations

from typing import Any

import click

from blobstore_api.commands import config_options
from blobstore_api.commands import failing_as
from blobstore_api.commands import settings_or_exit
from blobstore_api.commands._ops import command_logging
from blobstore_api.commands._ops import emit
from blobstore_api.commands._ops import human_bytes
from blobstore_api.commands._ops import open_store
from blobstore_api.commands._ops import output_options
from blobstore_api.commands._ops import table

__all__ = ["register", "stats"]


@click.command()
@config_options
@output_options
def stats(
    config: str | None, data_dir: str | None, as_json: bool, log_format: str
) -> None:
    """Blob counts, backend figures and drive health, and the last GC, heal
    and check runs. Exit status 1 if the store cannot be read."""
    from blobstore.jobs import job_states

    settings = settings_or_exit(config, data_dir)
    with command_logging(log_format):
        store = open_store(settings)
        try:
            with failing_as("cannot read the store"):
                totals = store.stats()
                doc = {
                    "blobs": totals.blobs,
                    "bytes": totals.bytes,
                    "composites": totals.composites,
                    "backend": store.backend_stats(),
                    **job_states(store),
                }
        finally:
            store.close()
    if as_json:
        emit(doc)
    else:
        _print(doc)


def _print(doc: dict[str, Any]) -> None:
    backend = doc["backend"]
    click.echo("store")
    table(
        [
            ("blobs", f"{doc['blobs']} ({human_bytes(doc['bytes'])})"),
            ("composites", doc["composites"]),
        ]
    )
    click.echo(f"backend {backend.get('type', '')}".rstrip())
    rows: list[tuple[str, object]] = []
    if "data_shards" in backend:
        rows.append(
            (
                "layout",
                f"{backend['data_shards']} data + {backend['parity_shards']} parity",
            )
        )
    for key in ("free_bytes", "total_bytes"):
        if key in backend:
            rows.append((key.replace("_", " "), human_bytes(backend[key])))
    for drive in backend.get("drives", []):
        if drive.get("online"):
            state = (
                f"online, {human_bytes(drive['free_bytes'])} free of "
                f"{human_bytes(drive['total_bytes'])}"
            )
        else:
            state = f"OFFLINE ({drive.get('error', 'unreachable')})"
        rows.append((f"drive {drive['path']}", state))
    # needs_heal is what this (fresh) process saw damaged: always 0 here.
    shown = {"type", "data_shards", "parity_shards", "drives", "needs_heal"}
    shown |= {"free_bytes", "total_bytes"}
    rows += [(k, v) for k, v in backend.items() if k not in shown]
    table(rows)
    click.echo("jobs")
    table(_job_rows(doc))


def _job_rows(doc: dict[str, Any]) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    run, failure = doc["gc"]["last_run"], doc["gc"]["last_failure"]
    rows.append(
        (
            "last gc",
            f"{run['finished']}: deleted {run['deleted']}, reclaimed "
            f"{human_bytes(run['reclaimed_bytes'])}, {run['errors']} errors, "
            f"{run['duration']}s"
            if run
            else "never",
        )
    )
    if failure and (not run or failure["finished"] > run["finished"]):
        rows.append(("last gc failure", f"{failure['finished']}: {failure['error']}"))
    heal = doc["heal"]
    rows.append(
        (
            "last heal",
            f"{heal['finished']}: {heal['scanned']} scanned, {heal['healed']} "
            f"healed, {heal['degraded']} degraded, "
            f"{heal['unrecoverable']} unrecoverable"
            if heal
            else "never",
        )
    )
    chk = doc["check"]
    rows.append(
        (
            "last check",
            f"{chk['finished']}: {chk['checked']} checked, {chk['corrupt']} "
            f"corrupt, {chk['missing']} missing, {chk['healed']} healed"
            if chk
            else "never",
        )
    )
    quarantined = doc["quarantined"] or {"total": 0, "blobs": []}
    rows.append(("quarantined", quarantined["total"]))
    for entry in quarantined["blobs"][-10:]:
        rows.append(
            ("", f"{entry['time']} {entry['hash']} {entry['kind']}: {entry['detail']}")
        )
    return rows


def register(group: click.Group) -> None:
    group.add_command(stats)
