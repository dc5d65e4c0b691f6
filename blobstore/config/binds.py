"""Listen addresses: parsing ``HOST:PORT`` / ``unix:PATH`` and refusing to
serve an open (token-less) service beyond loopback."""

from __future__ import annotations

import ipaddress

from blobstore.config.settings import Settings
from blobstore.errors import ConfigError

# -- binds --------------------------------------------------------------------


def split_bind(bind: str) -> tuple[str, int]:
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
    host, _ = split_bind(bind)
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
