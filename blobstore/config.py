"""Configuration: a TOML file, overlaid with ``BLOBSTORE_*`` environment
variables, validated key by key, and turned into a :class:`~blobstore.Store`.

::

    from blobstore.config import build_store, load_settings

    settings = load_settings("config/production.toml")
    store = build_store(settings)

Precedence, lowest first: built-in defaults, the file, the environment, then
the *overrides* a caller passes (the command line's ``--bind`` and friends).

**Environment variables.** ``BLOBSTORE_<SECTION>_<KEY>`` sets ``key`` in
``[section]``: ``BLOBSTORE_SERVER_BIND=0.0.0.0:8080``,
``BLOBSTORE_LIMITS_MIN_PART_SIZE=8MiB``. Section names have no underscores,
so the first underscore after the prefix splits section from key. A value
for a key of known type is read as that type (``"8MiB"`` is a size,
``"30m"`` a duration, ``"4"`` an integer); a list of tables is written in
TOML (``BLOBSTORE_AUTH_TOKENS='[{token="...", access="read"}]'``); in the
pass-through tables (``[backend]``, ``[s3]``, ``[cache]``) a value is read as
TOML when it is valid TOML (``4``, ``true``, ``["/d1", "/d2"]``) and as a
plain string otherwise. ``BLOBSTORE_CONFIG`` names the file and
``BLOBSTORE_DATA_DIR`` the data directory. Variables whose first word is not
a section (``BLOBSTORE_TEST_...``) are ignored.

Every error is a :class:`~blobstore.errors.ConfigError` whose message names
the key (and the variable, when it came from one), e.g.
``config error: [limits] min_part_size must be an integer``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from blobstore import registry
from blobstore.backends.cache import wrap_with_cache
from blobstore.errors import BadParams
from blobstore.errors import ConfigError
from blobstore.multipart import DEFAULT_MAX_PART_SIZE
from blobstore.multipart import DEFAULT_MAX_PARTS
from blobstore.multipart import DEFAULT_MIN_PART_SIZE
from blobstore.refsources import ref_source_from_config
from blobstore.store import Store
from blobstore.units import parse_duration
from blobstore.units import parse_size

__all__ = [
    "ACCESS_LEVELS",
    "AuthSettings",
    "GCSettings",
    "LimitSettings",
    "ServerSettings",
    "Settings",
    "Token",
    "build_store",
    "is_loopback",
    "load_settings",
    "require_safe_bind",
]

ENV_PREFIX = "BLOBSTORE_"
DEFAULT_DATA_DIR = "data"
DEFAULT_BIND = "127.0.0.1:8080"

#: Access levels, weakest first; each includes the ones before it.
ACCESS_LEVELS = ("read", "read-write", "admin")

_MIN_TOKEN_LENGTH = 16


# -- settings -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """``[server]``: how the HTTP service listens."""

    bind: str = DEFAULT_BIND
    workers: int = 2
    threads: int = 8
    max_body_size: int = 32 * 2**30
    certfile: str | None = None
    keyfile: str | None = None

    @property
    def tls(self) -> bool:
        return self.certfile is not None


@dataclass(frozen=True, slots=True)
class Token:
    """One bearer token and what it may do (one of :data:`ACCESS_LEVELS`)."""

    token: str
    access: str

    def __repr__(self) -> str:  # never print secrets in logs or tracebacks
        return f"Token(token='***', access={self.access!r})"


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """``[auth]``: bearer tokens. None means open access (loopback only)."""

    tokens: tuple[Token, ...] = ()

    @property
    def open(self) -> bool:
        return not self.tokens


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """``[limits]``: native multipart limits."""

    min_part_size: int = DEFAULT_MIN_PART_SIZE
    max_part_size: int = DEFAULT_MAX_PART_SIZE
    max_parts: int = DEFAULT_MAX_PARTS
    max_upload_expiry: timedelta = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class GCSettings:
    """``[gc]``: the grace period and external ref sources."""

    grace: timedelta = timedelta(minutes=30)
    ref_sources: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole validated configuration.

    ``catalog`` and ``backend`` are the tables handed to the implementation's
    ``from_config`` (with defaults filled in); ``s3`` and ``cache`` are passed
    through unvalidated for their owners.
    """

    data_dir: Path = Path(DEFAULT_DATA_DIR)
    server: ServerSettings = field(default_factory=ServerSettings)
    catalog: Mapping[str, Any] = field(default_factory=dict)
    backend: Mapping[str, Any] = field(default_factory=dict)
    auth: AuthSettings = field(default_factory=AuthSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    gc: GCSettings = field(default_factory=GCSettings)
    s3: Mapping[str, Any] = field(default_factory=dict)
    cache: Mapping[str, Any] = field(default_factory=dict)
    #: Where the settings came from (for log lines).
    source: str = "built-in defaults"

    @property
    def s3_enabled(self) -> bool:
        return self.s3.get("enabled") is True


# -- the schema ---------------------------------------------------------------

# A checker converts a raw value or raises ValueError("must be ...").
Checker = Callable[[Any], Any]


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def _nonempty_str(value: Any) -> str:
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


def _bind(value: Any) -> str:
    _str(value)
    if value.startswith("unix:"):
        if len(value) == len("unix:"):
            raise ValueError("needs a socket path after 'unix:'")
        return value
    _split_bind(value)
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
    "certfile": _nonempty_str,
    "keyfile": _nonempty_str,
}
_CATALOG: dict[str, Checker] = {
    "type": _nonempty_str,
    "path": _nonempty_str,
    "uri": _nonempty_str,
    "database": _nonempty_str,
    "prefix": _str,
}
_AUTH: dict[str, Checker] = {"tokens": _table_list}
_LIMITS: dict[str, Checker] = {
    "min_part_size": _size(1),
    "max_part_size": _size(1),
    "max_parts": _int(1),
    "max_upload_expiry": _positive_duration,
}
_GC: dict[str, Checker] = {"grace": parse_duration, "ref_sources": _table_list}

#: Typed sections: every key is known.
_SCHEMA: dict[str, dict[str, Checker]] = {
    "server": _SERVER,
    "catalog": _CATALOG,
    "auth": _AUTH,
    "limits": _LIMITS,
    "gc": _GC,
}
#: Pass-through sections: their owners validate the keys.
_RAW_SECTIONS = ("backend", "s3", "cache")
SECTIONS = (*_SCHEMA, *_RAW_SECTIONS)
_TOP_LEVEL = {"data_dir": _nonempty_str}
#: Keys whose values are lists of tables: environment values are TOML.
_TOML_KEYS = {("auth", "tokens"), ("gc", "ref_sources")}


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
        elif name in _TOP_LEVEL:
            source.top[name] = value
        else:
            known = ", ".join(f"[{s}]" for s in SECTIONS)
            raise ConfigError(
                f"{path}: unknown section or key {name!r} (known: {known})"
            )


def _env_value(section: str, key: str, text: str) -> Any:
    if section in _RAW_SECTIONS or (section, key) in _TOML_KEYS:
        try:
            return tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            if (section, key) in _TOML_KEYS:
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
    schema = _SCHEMA[section]
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
        if not isinstance(token, str) or len(token) < _MIN_TOKEN_LENGTH:
            raise source.error(
                "auth",
                f"{where}.token",
                f"must be a string of at least {_MIN_TOKEN_LENGTH} characters",
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
            _nonempty_str(data_dir)
        except ValueError as exc:
            raise ConfigError(f"data_dir {exc}") from None
    data = Path(data_dir)

    checked = {section: _check_section(source, section) for section in _SCHEMA}
    catalog = _plugin_table(source, "catalog", registry.CATALOGS, "sqlite")
    if catalog["type"] == "sqlite":
        catalog.setdefault("path", str(data / "catalog.db"))
    backend = _plugin_table(source, "backend", registry.BACKENDS, "local")
    if backend["type"] == "local":
        backend.setdefault("path", str(data / "blobs"))
    s3 = dict(source.tables.get("s3", {}))
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


# -- binds --------------------------------------------------------------------


def _split_bind(bind: str) -> tuple[str, int]:
    host, sep, port = bind.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError('must be "HOST:PORT" or "unix:PATH"')
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def is_loopback(bind: str) -> bool:
    """True if *bind* only accepts connections from this machine."""
    if bind.startswith("unix:"):
        return True
    host, _ = _split_bind(bind)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def require_safe_bind(settings: Settings, bind: str | None = None) -> None:
    """Refuse open access (no tokens) on a bind other machines can reach.

    :raises ConfigError:
    """
    bind = bind or settings.server.bind
    if settings.auth.open and not is_loopback(bind):
        raise ConfigError(
            f"[auth] tokens: none configured, and {bind} is reachable from other "
            "machines; add tokens or bind to a loopback address (127.0.0.1)"
        )


# -- building the store ---------------------------------------------------------


def _build(where: str, factory: Callable[[], Any]) -> Any:
    """Call *factory*, turning what a constructor says about its table into a
    :class:`ConfigError` that names *where* (``[backend]``, ...)."""
    try:
        return factory()
    except ImportError as exc:
        raise ConfigError(f"{where} type cannot be loaded: {exc}") from None
    except KeyError as exc:
        raise ConfigError(f"{where} missing key {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
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
        "[catalog]", lambda: registry.catalog_from_config(settings.catalog)
    )
    try:
        backend = _build("[backend]", lambda: _build_backend(settings.backend, catalog))
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
