"""Subcommands of ``blobstore``, one module each, discovered by
:mod:`blobstore_api.cli`. A command module looks like::

    import click

    from blobstore_api.commands import config_options, settings_or_exit

    @click.command()
    @config_options
    def stats(config, data_dir):
        settings = settings_or_exit(config, data_dir)
        ...

    def register(group: click.Group) -> None:
        group.add_command(stats)

Import heavy modules inside the command function, not at the top: every
``blobstore`` invocation imports every command module.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any
from typing import NoReturn

import click

from blobstore.config import Settings
from blobstore.config import load_settings
from blobstore.errors import BadParams
from blobstore.errors import BlobStoreError
from blobstore.errors import ConfigError
from blobstore.errors import LeaseHeld
from blobstore.lease import LeaseLost

__all__ = [
    "EXIT_CODES",
    "EXIT_CONFIG",
    "EXIT_FAILURE",
    "EXIT_TEMPFAIL",
    "config_options",
    "exit_code",
    "fail",
    "failing_as",
    "settings_or_exit",
]

log = logging.getLogger(__name__)

EXIT_FAILURE = 1
#: Bad usage or a bad configuration (click uses 2 for usage errors too).
EXIT_CONFIG = 2
#: Try again later: another job holds the lease (sysexits' EX_TEMPFAIL).
EXIT_TEMPFAIL = 75

#: Domain errors to exit statuses, the CLI's one table (as api/errors.py is
#: HTTP's): the first class that matches wins, so subclasses come first.
EXIT_CODES: tuple[tuple[type[BlobStoreError], int], ...] = (
    (ConfigError, EXIT_CONFIG),
    (BadParams, EXIT_CONFIG),
    (LeaseLost, EXIT_FAILURE),  # the job started, then stopped halfway
    (LeaseHeld, EXIT_TEMPFAIL),
    (BlobStoreError, EXIT_FAILURE),
)


def exit_code(exc: BlobStoreError) -> int:
    """The exit status of a command that failed with *exc* (:data:`EXIT_CODES`)."""
    return next(code for cls, code in EXIT_CODES if isinstance(exc, cls))


@contextlib.contextmanager
def failing_as(what: str) -> Iterator[None]:
    """Exit on a domain error raised in the block, with its status from
    :data:`EXIT_CODES` and one line: ``blobstore: <what>: <error>`` for a
    failure, the error alone for a bad request or a busy lease (they say
    what to change or that it is already running)."""
    try:
        yield
    except BlobStoreError as exc:
        code = exit_code(exc)
        if code == EXIT_FAILURE:
            log.error("%s: %s", what, exc)
            fail(f"{what}: {exc}", code)
        fail(str(exc), code)


def config_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--config FILE`` and ``--data-dir DIR`` to a command."""
    command = click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        envvar="BLOBSTORE_DATA_DIR",
        help="Directory of the embedded default's catalog and blobs "
        "(default ./data; env BLOBSTORE_DATA_DIR).",
    )(command)
    return click.option(
        "--config",
        "-c",
        type=click.Path(dir_okay=False),
        envvar="BLOBSTORE_CONFIG",
        help="TOML configuration file (env BLOBSTORE_CONFIG).",
    )(command)


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print ``blobstore: <message>`` on stderr and exit with *code*."""
    click.echo(f"blobstore: {message}", err=True)
    sys.exit(code)


def settings_or_exit(
    config: str | None,
    data_dir: str | None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Load the settings, or exit 2 with the one-line config error."""
    try:
        return load_settings(config, overrides=overrides, data_dir=data_dir)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
