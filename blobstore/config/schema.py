"""What each configuration key accepts: one checker per key, by section.

A checker turns a raw value (from TOML, or a string from the environment)
into the setting, or raises ``ValueError("must be ...")``; the loader adds
where the value came from. Sizes and durations are read by
:mod:`blobstore.units`, the one grammar for both."""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from blobstore.config.binds import split_bind
from blobstore.units import parse_duration
from blobstore.units import parse_size

# -- the schema ---------------------------------------------------------------

# A checker converts a raw value or raises ValueError("must be ...").
Checker = Callable[[Any], Any]


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def nonempty_str(value: Any) -> str:
    if not _str(value):
        raise ValueError("must not be empty")
    return value


def _int(minimum: int) -> Checker:
    def check(value: Any) -> int:
        if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        if value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value

    return check


def _size(minimum: int) -> Checker:
    def check(value: Any) -> int:
        size = parse_size(value)
        if size < minimum:
            raise ValueError(f"must be at least {minimum} bytes")
        return size

    return check


def _positive_duration(value: Any) -> timedelta:
    duration = parse_duration(value)
    if duration <= timedelta(0):
        raise ValueError("must be a positive duration")
    return duration


def _lease_ttl(value: Any) -> timedelta:
    # Renewed every third of it: below a second, a scheduling hiccup or a
    # slow catalog write would lose the lease.
    duration = parse_duration(value)
    if duration < timedelta(seconds=1):
        raise ValueError("must be at least 1s")
    return duration


def _bind(value: Any) -> str:
    _str(value)
    if value.startswith("unix:"):
        if len(value) == len("unix:"):
            raise ValueError("needs a socket path after 'unix:'")
        return value
    split_bind(value)
    return value


def _table_list(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ValueError("must be a list of tables")
    return value


_SERVER: dict[str, Checker] = {
    "bind": _bind,
    "workers": _int(1),
    "threads": _int(1),
    "max_body_size": _size(1),
    "header_timeout": _positive_duration,
    "body_timeout": _positive_duration,
    "certfile": nonempty_str,
    "keyfile": nonempty_str,
}
_CATALOG: dict[str, Checker] = {
    "type": nonempty_str,
    "path": nonempty_str,
    "uri": nonempty_str,
    "database": nonempty_str,
    "prefix": _str,
}
_AUTH: dict[str, Checker] = {"tokens": _table_list}
_LIMITS: dict[str, Checker] = {
    "min_part_size": _size(1),
    "max_part_size": _size(1),
    "max_parts": _int(1),
    "max_upload_expiry": _positive_duration,
}
_GC: dict[str, Checker] = {
    "grace": parse_duration,
    "lease_ttl": _lease_ttl,
    "ref_sources": _table_list,
}

#: Typed sections: every key is known.
SCHEMA: dict[str, dict[str, Checker]] = {
    "server": _SERVER,
    "catalog": _CATALOG,
    "auth": _AUTH,
    "limits": _LIMITS,
    "gc": _GC,
}
#: Pass-through sections: their owners validate the keys.
RAW_SECTIONS = ("backend", "s3", "cache")
#: The keys of ``[s3]``: refused otherwise even with the façade off (a typo
#: such as ``enable = true`` must not silently leave it off). The façade
#: checks their values (blobstore_api.s3.context.S3Config).
S3_KEYS = ("enabled", "region", "credentials", "multipart_expiry")
SECTIONS = (*SCHEMA, *RAW_SECTIONS)
TOP_LEVEL = {"data_dir": nonempty_str}
#: Keys whose values are lists of tables: environment values are TOML.
TOML_KEYS = {("auth", "tokens"), ("gc", "ref_sources")}
