"""The validated configuration: one frozen dataclass per section, and
:class:`Settings` holding them all (what :func:`~blobstore.config.load_settings`
returns and :func:`~blobstore.config.build_store` reads)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from pathlib import Path
from typing import Any

from blobstore.multipart import DEFAULT_MAX_PART_SIZE
from blobstore.multipart import DEFAULT_MAX_PARTS
from blobstore.multipart import DEFAULT_MIN_PART_SIZE

ENV_PREFIX = "BLOBSTORE_"
DEFAULT_DATA_DIR = "data"
DEFAULT_BIND = "127.0.0.1:8080"

#: Access levels, weakest first; each includes the ones before it.
ACCESS_LEVELS = ("read", "read-write", "admin")

MIN_TOKEN_LENGTH = 16


# -- settings -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """``[server]``: how the HTTP service listens."""

    bind: str = DEFAULT_BIND
    workers: int = 2
    threads: int = 8
    max_body_size: int = 32 * 2**30
    #: Longest wait for more of a request's head (line and headers): a client
    #: that stalls there is disconnected.
    header_timeout: timedelta = timedelta(seconds=60)
    #: Longest wait for more of a request body (then 408, nothing stored), or
    #: for the client to take more of a response (then the connection closes).
    body_timeout: timedelta = timedelta(seconds=60)
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
    """``[gc]``: the grace period, the pass's lease and external ref sources."""

    grace: timedelta = timedelta(minutes=30)
    #: How long a pass's lease outlives its holder: a node that dies mid-pass
    #: blocks other passes this long.
    lease_ttl: timedelta = timedelta(minutes=2)
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
