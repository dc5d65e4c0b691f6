"""The ``blobstore`` command.

Subcommands are modules in :mod:`blobstore_api.commands`, found at start: a
module there defines ``register(group)`` and adds its click command(s) to
the group, so adding a command is adding a module (no edit here). Shared
options and the config-error convention are in that package's
``__init__``.

Exit codes: 0 success, 1 failure (or, for ``check`` and ``heal``, problems
found), 2 bad usage or configuration, 75 (EX_TEMPFAIL) another run holds the
job's lease (``gc``, ``check --quarantine``).
"""

from __future__ import annotations

import importlib
import pkgutil

import click

import blobstore
from blobstore_api import commands
from blobstore_api.commands._ops import install_default_logging

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(blobstore.__version__, prog_name="blobstore")
def main() -> None:
    """blobstore: a content-addressed blob store service."""
    install_default_logging()


def _register_commands(group: click.Group) -> None:
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        importlib.import_module(f"{commands.__name__}.{module.name}").register(group)


_register_commands(main)

if __name__ == "__main__":
    main()
