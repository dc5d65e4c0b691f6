"""``blobstore put``, ``blobstore get`` and ``blobstore refs``: a service's
native API from the shell, through :class:`blobstore.client.Client`.

They talk to ``--url`` (``BLOBSTORE_URL``, default http://127.0.0.1:8080)
with ``--token`` (``BLOBSTORE_TOKEN``), never to a local catalog. A file
bigger than one part goes up as a parallel multipart upload, with a progress
bar on a terminal; its upload id is printed first, so an interrupted
``put`` resumes with ``--resume ID``. Errors exit as every command's do
(1 failure, 2 bad request).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from blobstore_api.commands import failing_as
from blobstore_api.commands._ops import ProgressBar
from blobstore_api.commands._ops import emit

__all__ = ["get", "put", "refs", "register"]

DEFAULT_URL = "http://127.0.0.1:8080"


def service_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--url``, ``--token`` and ``--json``."""
    command = click.option(
        "--json", "as_json", is_flag=True, help="Print the result as one JSON object."
    )(command)
    command = click.option(
        "--token",
        envvar="BLOBSTORE_TOKEN",
        help="Bearer token (env BLOBSTORE_TOKEN).",
    )(command)
    return click.option(
        "--url",
        envvar="BLOBSTORE_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="The service (env BLOBSTORE_URL).",
    )(command)


def _client(url: str, token: str | None) -> Any:
    from blobstore.client import Client

    return Client(url, token)


def _size(value: str | None) -> int | None:
    if value is None:
        return None
    from blobstore.units import parse_size

    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--ref", "ref_name", help="Also pin the blob under this ref name.")
@click.option(
    "--part-size", help='Multipart part size ("64MiB"; default from the size).'
)
@click.option("--concurrency", default=4, show_default=True, help="Parts in flight.")
@click.option("--resume", "upload_id", help="Resume this multipart upload.")
@service_options
def put(
    file: str,
    ref_name: str | None,
    part_size: str | None,
    concurrency: int,
    upload_id: str | None,
    url: str,
    token: str | None,
    as_json: bool,
) -> None:
    """Store FILE (- for stdin) and print its hash."""
    from blobstore.client.upload import default_part_size

    parts = _size(part_size)
    with _client(url, token) as client, failing_as(f"cannot put {file}"):
        if file == "-":
            result = client.put(sys.stdin.buffer)
            digest, size = result.hash, result.size
        else:
            size = os.path.getsize(file)
            if upload_id is None and size <= (parts or default_part_size(size)):
                with open(file, "rb") as stream:
                    digest = client.put(stream).hash
            else:
                digest = _upload(client, file, size, parts, concurrency, upload_id)
        if ref_name:
            client.put_ref(ref_name, digest)
    if as_json:
        emit({"hash": digest, "size": size, "ref": ref_name})
    else:
        click.echo(digest)


def _upload(
    client: Any,
    file: str,
    size: int,
    part_size: int | None,
    concurrency: int,
    upload_id: str | None,
) -> str:
    lock = threading.Lock()
    with ProgressBar(unit="B") as bar:

        def progress(done: int, total: int) -> None:
            with lock:
                bar.set("upload", done, total)

        def started(upload: str) -> None:
            click.echo(
                f"blobstore: upload {upload} (resume with --resume {upload})",
                err=True,
            )

        return client.upload_file(
            file,
            part_size=part_size,
            concurrency=concurrency,
            upload_id=upload_id,
            progress=progress,
            on_upload=started,
        )


@click.command()
@click.argument("hash")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here.")
@service_options
def get(
    hash: str, output: str | None, url: str, token: str | None, as_json: bool
) -> None:
    """Write blob HASH to stdout, or to --output (verified, then renamed)."""
    with _client(url, token) as client, failing_as(f"cannot get {hash}"):
        if output is not None:
            size = client.get_file(hash, output)
        else:
            size = _to_stdout(client, hash)
    if as_json:
        emit({"hash": hash, "size": size, "output": output})


def _to_stdout(client: Any, hash: str) -> int:
    size = client.copy_to(hash, sys.stdout.buffer)  # HashMismatch: exits
    sys.stdout.buffer.flush()
    return size


@click.group()
def refs() -> None:
    """Named refs on a service: list, get, set, delete."""


def _ref_doc(ref: Any) -> dict[str, Any]:
    return {"name": ref.name, "hash": ref.hash, "mtime": ref.mtime.isoformat()}


@refs.command("list")
@click.option("--prefix", default="", help="Only names starting with this.")
@service_options
def refs_list(prefix: str, url: str, token: str | None, as_json: bool) -> None:
    """Every ref under --prefix, in name order (one per line: HASH NAME)."""
    with _client(url, token) as client, failing_as("cannot list refs"):
        for ref in client.iter_refs(prefix):
            if as_json:
                emit(_ref_doc(ref))
            else:
                click.echo(f"{ref.hash} {ref.name}")


@refs.command("get")
@click.argument("name")
@service_options
def refs_get(name: str, url: str, token: str | None, as_json: bool) -> None:
    """Print the hash NAME pins."""
    with _client(url, token) as client, failing_as(f"cannot get ref {name!r}"):
        ref = client.get_ref(name)
    if as_json:
        emit(_ref_doc(ref))
    else:
        click.echo(ref.hash)


@refs.command("set")
@click.argument("name")
@click.argument("hash")
@service_options
def refs_set(name: str, hash: str, url: str, token: str | None, as_json: bool) -> None:
    """Pin blob HASH under NAME."""
    with _client(url, token) as client, failing_as(f"cannot set ref {name!r}"):
        created = client.put_ref(name, hash)
    if as_json:
        emit({"name": name, "hash": hash, "created": created})


@refs.command("delete")
@click.argument("name")
@service_options
def refs_delete(name: str, url: str, token: str | None, as_json: bool) -> None:
    """Remove the ref NAME (its blob is left to GC)."""
    with _client(url, token) as client, failing_as(f"cannot delete ref {name!r}"):
        client.delete_ref(name)
    if as_json:
        emit({"name": name, "deleted": True})


def register(group: click.Group) -> None:
    group.add_command(put)
    group.add_command(get)
    group.add_command(refs)
