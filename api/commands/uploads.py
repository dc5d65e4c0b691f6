"""``blobstore uploads list|remove-expired``: multipart uploads in flight.

Lists native uploads (``/v1/uploads``) and S3 multipart uploads together;
``remove-expired`` removes the native ones past their expiry and the S3 ones
started longer ago than ``[s3] multipart_expiry`` (what ``blobstore gc``
does first). Their parts are then garbage for the next GC pass.
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
from blobstore_api.commands._ops import s3_multipart_expiry

__all__ = ["register", "uploads"]


@click.group()
def uploads() -> None:
    """Native and S3 multipart uploads in progress."""


@uploads.command("list")
@config_options
@click.option(
    "--expired",
    is_flag=True,
    help="Only uploads past their expiry (what remove-expired would remove).",
)
@output_options
def list_uploads(
    config: str | None,
    data_dir: str | None,
    expired: bool,
    as_json: bool,
    log_format: str,
) -> None:
    """List multipart uploads (native and S3)."""
    from blobstore.clock import utcnow
    from blobstore.s3.objects import ObjectStore

    settings = settings_or_exit(config, data_dir)
    expiry = s3_multipart_expiry(settings)
    with command_logging(log_format):
        store = open_store(settings)
        try:
            now = utcnow()
            objects = ObjectStore(store, multipart_expiry=expiry)
            with failing_as("cannot list uploads"):
                native = [
                    _native(u, now)
                    for u in store.list_uploads(expired_before=now if expired else None)
                ]
                stale_at = now if expired else None
                s3 = [
                    _s3(u, parts, now, expiry)
                    for u, parts in objects.all_uploads(stale_at=stale_at)
                ]
        finally:
            store.close()
    if as_json:
        emit({"uploads": native, "s3_uploads": s3})
        return
    click.echo(f"{len(native)} native uploads, {len(s3)} S3 multipart uploads")
    for u in native:
        state = "finished" if u["hash"] else "in progress"
        click.echo(
            f"native {u['id']}  {state}  {u['parts']} parts "
            f"({human_bytes(u['bytes'])})  expires {u['expires']}"
            + ("  EXPIRED" if u["expired"] else "")
            + (f"  owner {u['owner']}" if u["owner"] else "")
        )
    for u in s3:
        click.echo(
            f"s3     {u['id']}  {u['bucket']}/{u['key']}  {u['parts']} parts "
            f"({human_bytes(u['bytes'])})  started {u['initiated']}"
            + ("  STALE" if u["expired"] else "")
        )


def _native(upload, now) -> dict[str, Any]:
    parts = [p for p in upload.parts if p is not None]
    return {
        "id": upload.id,
        "expires": upload.expires.isoformat(),
        "expired": upload.expires < now,
        "parts": len(parts),
        "parts_complete": sum(1 for p in parts if p.complete),
        "bytes": sum(p.size for p in parts),
        "hash": upload.hash,
        "owner": upload.owner,
    }


def _s3(upload, parts, now, expiry) -> dict[str, Any]:
    return {
        "id": upload.id,
        "bucket": upload.bucket,
        "key": upload.key,
        "owner": upload.owner,
        "initiated": upload.initiated.isoformat(),
        "expires": (upload.initiated + expiry).isoformat(),
        "expired": upload.initiated < now - expiry,
        "parts": len(parts),
        "bytes": sum(p.size for p in parts),
    }


@uploads.command("remove-expired")
@config_options
@output_options
def remove_expired(
    config: str | None, data_dir: str | None, as_json: bool, log_format: str
) -> None:
    """Remove expired native uploads and stale S3 multipart uploads."""
    from blobstore.clock import utcnow
    from blobstore.s3.objects import ObjectStore

    settings = settings_or_exit(config, data_dir)
    expiry = s3_multipart_expiry(settings)
    with command_logging(log_format):
        store = open_store(settings)
        try:
            now = utcnow()
            with failing_as("cannot remove uploads"):
                native = store.remove_expired_uploads(now)
                objects = ObjectStore(store, multipart_expiry=expiry)
                s3 = objects.remove_stale_uploads(now)
        finally:
            store.close()
    if as_json:
        emit({"uploads_removed": native, "s3_uploads_removed": s3})
    else:
        click.echo(f"removed {native} expired native uploads, {s3} stale S3 uploads")


def register(group: click.Group) -> None:
    group.add_command(uploads)
