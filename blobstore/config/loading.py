"""Reading the configuration: the TOML file, then ``BLOBSTORE_*`` variables,
then the caller's overrides, each key checked against the schema, into
:class:`~blobstore.config.settings.Settings` (:func:`load_settings`)."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from blobstore import registry
from blobstore.config.schema import RAW_SECTIONS
from blobstore.config.schema import S3_KEYS
from blobstore.config.schema import SCHEMA
from blobstore.config.schema import SECTIONS
from blobstore.config.schema import TOML_KEYS
from blobstore.config.schema import TOP_LEVEL
from blobstore.config.schema import nonempty_str
from blobstore.config.settings import ACCESS_LEVELS
from blobstore.config.settings import DEFAULT_DATA_DIR
from blobstore.config.settings import ENV_PREFIX
from blobstore.config.settings import MIN_TOKEN_LENGTH
from blobstore.config.settings import AuthSettings
from blobstore.config.settings import GCSettings
from blobstore.config.settings import LimitSettings
from blobstore.config.settings import ServerSettings
from blobstore.config.settings import Settings
from blobstore.config.settings import Token
from blobstore.errors import ConfigError


class _Source:
    """Raw values and where each came from, to name them in errors."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, Any]] = {}
        self.top: dict[str, Any] = {}
        self.origin: dict[tuple[str, str], str] = {}

    def name(self, section: str, key: str) -> str:
        # "tokens[0].access" came from wherever "tokens" came from.
        where = self.origin.get((section, re.split(r"[\[.]", key)[0]))
        label = f"[{section}] {key}"
        return f"{label} (from {where})" if where else label

    def error(self, section: str, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.name(section, key)} {problem}")


def _read_file(path: str | os.PathLike[str], source: _Source) -> None:
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    for name, value in raw.items():
        if name in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"[{name}] must be a table")
            source.tables[name] = dict(value)
        elif name in TOP_LEVEL:
            source.top[name] = value
        else:
            known = ", ".join(f"[{s}]" for s in SECTIONS)
            raise ConfigError(
                f"{path}: unknown section or key {name!r} (known: {known})"
            )


def _env_value(section: str, key: str, text: str) -> Any:
    if section in RAW_SECTIONS or (section, key) in TOML_KEYS:
        try:
            return tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            if (section, key) in TOML_KEYS:
                raise ConfigError(
                    f"[{section}] {key} (from {ENV_PREFIX}{section.upper()}_"
                    f"{key.upper()}) must be a TOML list of tables"
                ) from None
            return text
    return text  # typed keys: the checker reads strings as their type


def _read_env(env: Mapping[str, str], source: _Source) -> None:
    for name, text in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("_")
        if section not in SECTIONS or not key:
            continue  # BLOBSTORE_CONFIG, BLOBSTORE_DATA_DIR, BLOBSTORE_TEST_...
        source.tables.setdefault(section, {})[key] = _env_value(section, key, text)
        source.origin[(section, key)] = name


def _check_section(source: _Source, section: str) -> dict[str, Any]:
    schema = SCHEMA[section]
    values = {}
    for key, raw in source.tables.get(section, {}).items():
        checker = schema.get(key)
        if checker is None:
            raise source.error(
                section, key, f"is not a known key (known: {', '.join(schema)})"
            )
        try:
            values[key] = checker(raw)
        except ValueError as exc:
            raise source.error(section, key, str(exc)) from None
    return values


def _tokens(source: _Source, tables: list[Mapping[str, Any]]) -> tuple[Token, ...]:
    tokens = []
    seen = set()
    for i, table in enumerate(tables):
        where = f"tokens[{i}]"
        unknown = set(table) - {"token", "access"}
        if unknown:
            raise source.error("auth", where, f"has unknown key {sorted(unknown)[0]!r}")
        token, access = table.get("token"), table.get("access")
        if not isinstance(token, str) or len(token) < MIN_TOKEN_LENGTH:
            raise source.error(
                "auth",
                f"{where}.token",
                f"must be a string of at least {MIN_TOKEN_LENGTH} characters",
            )
        if any(c.isspace() or not c.isprintable() for c in token):
            raise source.error("auth", f"{where}.token", "must not contain spaces")
        if access not in ACCESS_LEVELS:
            raise source.error(
                "auth", f"{where}.access", f"must be one of {', '.join(ACCESS_LEVELS)}"
            )
        if token in seen:
            raise source.error("auth", f"{where}.token", "is listed twice")
        seen.add(token)
        tokens.append(Token(token, access))
    return tuple(tokens)


def _ref_sources(source: _Source, tables: list[Mapping[str, Any]]) -> tuple:
    for i, table in enumerate(tables):
        if not isinstance(table.get("type"), str):
            raise source.error("gc", f"ref_sources[{i}].type", "must be a string")
    return tuple(dict(t) for t in tables)


def _server(source: _Source, values: dict[str, Any]) -> ServerSettings:
    server = ServerSettings(**values)
    if (server.certfile is None) != (server.keyfile is None):
        missing = "keyfile" if server.keyfile is None else "certfile"
        raise source.error("server", missing, "is required for TLS (set both or none)")
    for key in ("certfile", "keyfile"):
        path = getattr(server, key)
        if path is not None and not os.path.isfile(path):
            raise source.error("server", key, f"{path!r} is not a readable file")
    return server


def _limits(source: _Source, values: dict[str, Any]) -> LimitSettings:
    limits = LimitSettings(**values)
    if limits.min_part_size > limits.max_part_size:
        raise source.error(
            "limits", "min_part_size", "must not be larger than max_part_size"
        )
    return limits


def _plugin_table(
    source: _Source, section: str, group: str, default_type: str
) -> dict[str, Any]:
    table = dict(source.tables.get(section, {}))
    kind = table.setdefault("type", default_type)
    if not isinstance(kind, str):
        raise source.error(section, "type", "must be a string")
    available = registry.available(group)
    if kind not in available:
        raise source.error(
            section,
            "type",
            f"{kind!r} is not installed (available: {', '.join(available)})",
        )
    return table


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> Settings:
    """Read, overlay and validate the configuration.

    :param path: a TOML file; default ``$BLOBSTORE_CONFIG``, else none (the
        embedded default).
    :param env: the environment (default :data:`os.environ`).
    :param overrides: ``{section: {key: value}}`` applied last (command-line
        options).
    :param data_dir: where default paths live; default ``$BLOBSTORE_DATA_DIR``,
        else the file's top-level ``data_dir``, else ``./data``.
    :raises ConfigError: naming the first bad key.
    """
    env = os.environ if env is None else env
    source = _Source()
    path = path if path is not None else env.get(f"{ENV_PREFIX}CONFIG") or None
    if path is not None:
        _read_file(path, source)
    _read_env(env, source)
    for section, values in (overrides or {}).items():
        for key, value in values.items():
            if value is not None:
                source.tables.setdefault(section, {})[key] = value
                source.origin[(section, key)] = "command line"
    if data_dir is None:
        data_dir = env.get(f"{ENV_PREFIX}DATA_DIR") or source.top.get(
            "data_dir", DEFAULT_DATA_DIR
        )
        try:
            nonempty_str(data_dir)
        except ValueError as exc:
            raise ConfigError(f"data_dir {exc}") from None
    data = Path(data_dir)

    checked = {section: _check_section(source, section) for section in SCHEMA}
    catalog = _plugin_table(source, "catalog", registry.CATALOGS, "sqlite")
    if catalog["type"] == "sqlite":
        catalog.setdefault("path", str(data / "catalog.db"))
    backend = _plugin_table(source, "backend", registry.BACKENDS, "local")
    if backend["type"] == "local":
        backend.setdefault("path", str(data / "blobs"))
    s3 = dict(source.tables.get("s3", {}))
    for key in s3:
        if key not in S3_KEYS:
            raise source.error(
                "s3", key, f"is not a known key (known: {', '.join(S3_KEYS)})"
            )
    if not isinstance(s3.get("enabled", False), bool):
        raise source.error("s3", "enabled", "must be true or false")
    auth = checked["auth"]
    gc = checked["gc"]
    return Settings(
        data_dir=data,
        server=_server(source, checked["server"]),
        catalog=catalog,
        backend=backend,
        auth=AuthSettings(_tokens(source, auth.get("tokens", []))),
        limits=_limits(source, checked["limits"]),
        gc=replace(
            GCSettings(**{k: v for k, v in gc.items() if k != "ref_sources"}),
            ref_sources=_ref_sources(source, gc.get("ref_sources", [])),
        ),
        s3=s3,
        cache=dict(source.tables.get("cache", {})),
        source=str(path) if path is not None else "built-in defaults",
    )
