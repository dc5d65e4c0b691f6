"""The ``blobstore`` command.

Subcommands are modules in :mod:`blobstore_api.commands`, found at start: a
module there defines ``register(group)`` and adds its click command(s) to
the group, so adding a command is adding a module (no edit here). Shared
options and the config-error convention are in that package's
``__init__``.

Exit codes: 0 success, 1 failure, 2 bad usage or configuration.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil

import click

import blobstore
from blobstore_api import commands

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(blobstore.__version__, prog_name="blobstore")
def main() -> None:
    """blobstore: a content-addressed blob store service."""
    logging.basicConfig(
        level=logging.INFO,
        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S %z",
    )


def _register_commands(group: click.Group) -> None:
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        importlib.import_module(f"{commands.__name__}.{module.name}").register(group)


_register_commands(main)

if __name__ == "__main__":
    main()
