"""The composition root: the catalog, backend (with its read cache), limits
and GC ref sources the settings describe, built into a Store
(:func:`build_store`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from blobstore import registry
from blobstore.backends.cache import wrap_with_cache
from blobstore.config.settings import Settings
from blobstore.errors import BadParams
from blobstore.errors import ConfigError
from blobstore.refsources import ref_source_from_config
from blobstore.store import Store

# -- building the store ---------------------------------------------------------


#: What Python says of a keyword a constructor does not take.
_UNEXPECTED = re.compile(r"unexpected keyword argument '([^']+)'")


def _build(where: str, factory: Callable[[], Any], type_name: str = "") -> Any:
    """Call *factory*, turning what a constructor says about its table into a
    :class:`ConfigError` that names *where* (``[backend]``, ...) and the
    ``type`` asked for (a class deep in the constructor chain, such as the
    erasure backend under ``local``, means nothing to the operator)."""
    try:
        return factory()
    except ImportError as exc:
        raise ConfigError(f"{where} type cannot be loaded: {exc}") from None
    except KeyError as exc:
        raise ConfigError(f"{where} missing key {exc.args[0]!r}") from None
    except TypeError as exc:
        unknown = _UNEXPECTED.search(str(exc))
        if unknown is None:
            raise ConfigError(f"{where} {exc}") from None
        kind = f' (type = "{type_name}")' if type_name else ""
        raise ConfigError(
            f"{where} {unknown.group(1)} is not a known key{kind}"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"{where} {exc}") from None
    except ConfigError:
        raise
    except BadParams as exc:
        # Some builders name their section themselves ("gc.ref_sources: ...",
        # "cache.path: ..."); *where* already does.
        message = str(exc).removeprefix("gc.ref_sources: ").removeprefix("cache.")
        raise ConfigError(f"{where} {message}") from None


def _build_backend(table: Mapping[str, Any], catalog: Any) -> Any:
    """The backend of a ``[backend]`` table.

    A GridFS backend beside a MongoDB catalog takes the catalog's ``uri``,
    ``database`` and ``prefix`` unless it sets its own, and shares the
    catalog's connection pool when both talk to the same server: a
    MongoDB-only deployment then opens one pool per process, not two. (The
    backend gets only the connection, never the catalog.)
    """
    from blobstore.catalog.mongo import MongoCatalog

    if table.get("type") != "gridfs" or not isinstance(catalog, MongoCatalog):
        return registry.backend_from_config(table)
    shared = dict(table)
    shared.setdefault("uri", catalog.uri)
    shared.setdefault("database", catalog.database)
    shared.setdefault("prefix", catalog.prefix)
    client = catalog.client if shared["uri"] == catalog.uri else None
    return registry.load(registry.BACKENDS, "gridfs").from_config(shared, client=client)


def build_store(settings: Settings) -> Store:
    """The Store the settings describe: catalog, backend, limits, ref sources.

    :raises ConfigError: a table the implementation refuses.
    :raises Unavailable: storage that cannot be reached or created.
    """
    catalog = _build(
        "[catalog]",
        lambda: registry.catalog_from_config(settings.catalog),
        settings.catalog.get("type", ""),
    )
    try:
        backend = _build(
            "[backend]",
            lambda: _build_backend(settings.backend, catalog),
            settings.backend.get("type", ""),
        )
        try:
            # A read cache (off by default) wraps whatever backend was built.
            backend = _build(
                "[cache]", lambda: wrap_with_cache(backend, settings.cache)
            )
            ref_sources = [
                _build(f"[gc] ref_sources[{i}]:", lambda t=t: ref_source_from_config(t))
                for i, t in enumerate(settings.gc.ref_sources)
            ]
        except BaseException:
            backend.close()
            raise
    except BaseException:
        catalog.close()
        raise
    limits = settings.limits
    return Store(
        catalog,
        backend,
        min_part_size=limits.min_part_size,
        max_part_size=limits.max_part_size,
        max_parts=limits.max_parts,
        max_upload_expiry=limits.max_upload_expiry,
        ref_sources=ref_sources,
    )
