"""Find catalogs and backends by their config ``type`` name.

Implementations are declared in the ``blobstore.catalogs`` and
``blobstore.backends`` entry-point groups (see ``setup.cfg``), so another
package can add one without touching this repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from blobstore.backends.base import Backend
from blobstore.catalog.base import Catalog
from blobstore.errors import BadParams

__all__ = ["available", "backend_from_config", "catalog_from_config", "load"]

CATALOGS = "blobstore.catalogs"
BACKENDS = "blobstore.backends"


def available(group: str) -> list[str]:
    """The type names registered in *group*."""
    return sorted(ep.name for ep in entry_points(group=group))


def load(group: str, name: str) -> type:
    """The class registered as *name* in *group*."""
    found = entry_points(group=group, name=name)
    if not found:
        raise BadParams(
            f"unknown {group.rsplit('.', 1)[-1][:-1]} type {name!r} "
            f"(available: {', '.join(available(group))})"
        )
    return next(iter(found)).load()


def _from_config(group: str, config: Mapping[str, Any]) -> Any:
    kind = config.get("type")
    if not isinstance(kind, str):
        raise BadParams(f"{group.rsplit('.', 1)[-1][:-1]}.type is required")
    return load(group, kind).from_config(config)


def catalog_from_config(config: Mapping[str, Any]) -> Catalog:
    """Build the catalog described by a ``[catalog]`` table."""
    return _from_config(CATALOGS, config)


def backend_from_config(config: Mapping[str, Any]) -> Backend:
    """Build the backend described by a ``[backend]`` table."""
    return _from_config(BACKENDS, config)
