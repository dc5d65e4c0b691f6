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

import sys
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import NoReturn

import click

from blobstore.config import Settings
from blobstore.config import load_settings
from blobstore.errors import ConfigError

__all__ = ["EXIT_CONFIG", "EXIT_FAILURE", "config_options", "fail", "settings_or_exit"]

EXIT_FAILURE = 1
#: Bad usage or a bad configuration (click uses 2 for usage errors too).
EXIT_CONFIG = 2


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
