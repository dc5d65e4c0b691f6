"""The ``[cache]`` config table: validate it and wrap a backend with it.

Every error is one line naming the key (``cache.max_size: ...``), raised as
:class:`~blobstore.errors.BadParams` before anything touches the disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blobstore.backends.base import Backend
from blobstore.backends.cache.backend import CacheBackend
from blobstore.backends.cache.limits import DEFAULT_MIN_FREE
from blobstore.backends.cache.limits import parse_size
from blobstore.errors import BadParams

__all__ = ["wrap_with_cache"]

_SIZES = ("max_size", "min_free", "max_object_size")
_FRACTIONS = ("high_water", "low_water")
_FLAGS = ("enabled", "keep_on_put", "verify_reads")
_COUNTS = ("max_fills",)
_KNOWN = {"path", *_SIZES, *_FRACTIONS, *_FLAGS, *_COUNTS}


def wrap_with_cache(backend: Backend, config: Mapping[str, Any] | None) -> Backend:
    """*backend* behind a :class:`CacheBackend` as ``[cache]`` says, or
    *backend* itself when the table is missing or ``enabled`` is false.

    :raises BadParams: an unknown key, a missing ``path`` or ``max_size``, a
        value of the wrong type or out of range.
    """
    if not config:
        return backend
    unknown = sorted(set(config) - _KNOWN)
    if unknown:
        raise BadParams(
            f"cache.{unknown[0]}: unknown key (known: {', '.join(sorted(_KNOWN))})"
        )
    for key in _FLAGS:
        if key in config and not isinstance(config[key], bool):
            raise BadParams(f"cache.{key}: expected true or false, got {config[key]!r}")
    if not config.get("enabled", False):
        return backend
    path = config.get("path")
    if not isinstance(path, str) or not path:
        raise BadParams("cache.path: required when the cache is enabled (a directory)")
    if "max_size" not in config:
        raise BadParams("cache.max_size: required when the cache is enabled")
    return CacheBackend(backend, path, **_options(config))


def _options(config: Mapping[str, Any]) -> dict[str, Any]:
    """The CacheBackend keyword arguments of a (known-keys) ``[cache]`` table."""
    kwargs: dict[str, Any] = {"min_free": DEFAULT_MIN_FREE}
    for key in _SIZES:
        if key in config:
            kwargs[key] = parse_size(config[key], f"cache.{key}")
    for key in _FRACTIONS:
        if key in config:
            value = config[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BadParams(f"cache.{key}: expected a fraction, got {value!r}")
            kwargs[key] = float(value)
    for key in _COUNTS:
        if key in config:
            value = config[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BadParams(
                    f"cache.{key}: expected a positive integer, got {value!r}"
                )
            kwargs[key] = value
    for key in ("keep_on_put", "verify_reads"):
        if key in config:
            kwargs[key] = config[key]
    return kwargs
