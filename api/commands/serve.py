"""``blobstore serve``: run the HTTP service in the foreground."""

from __future__ import annotations

import click

from blobstore_api.commands import config_options
from blobstore_api.commands import failing_as
from blobstore_api.commands import settings_or_exit

__all__ = ["register", "serve"]


@click.command()
@config_options
@click.option(
    "--bind", "-b", metavar="HOST:PORT", help="Listen here (default 127.0.0.1:8080)."
)
@click.option("--workers", "-w", type=click.IntRange(min=1), help="Worker processes.")
@click.option("--threads", type=click.IntRange(min=1), help="Threads per worker.")
def serve(
    config: str | None,
    data_dir: str | None,
    bind: str | None,
    workers: int | None,
    threads: int | None,
) -> None:
    """Run the blob store service (gunicorn, threaded workers).

    With no configuration it serves the embedded default on 127.0.0.1:8080:
    an SQLite catalog and blobs on local disk under ./data.
    """
    overrides = {"server": {"bind": bind, "workers": workers, "threads": threads}}
    settings = settings_or_exit(config, data_dir, overrides)
    from blobstore_api import server

    with failing_as("cannot start"):
        server.serve(settings)


def register(group: click.Group) -> None:
    group.add_command(serve)
