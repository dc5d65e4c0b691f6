"""The Swift backend's ``[backend]`` table: parsing, validation, defaults.

Every key is checked here once, with a message that names the key, so a
typo or a leftover from another backend's config fails at start, not at the
first upload. :meth:`SwiftConfig.connection_kwargs` turns the table into the
arguments of :class:`swiftclient.client.Connection`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import fields
from typing import Any

from blobstore.errors import BadParams

__all__ = ["GIB", "MAX_OBJECT_SIZE", "SwiftConfig"]

GIB = 1 << 30
#: Swift's default ``max_file_size``: the largest single object it accepts.
MAX_OBJECT_SIZE = 5 * GIB

_AUTH_VERSIONS = {"1": "1.0", "1.0": "1.0", "2": "2.0", "2.0": "2.0", "3": "3"}

# Keys some users will carry over from elsewhere, with why they do not apply.
_REJECTED = {
    "temp_dir": (
        "the Swift backend streams puts straight to Swift while hashing; it "
        "never spools blobs to a temporary directory"
    ),
    "type": "",  # handled by the registry, never passed here
}


@dataclass(frozen=True)
class SwiftConfig:
    """The validated ``[backend]`` table of ``type = "swift"``.

    See ``config/swift-tempauth.toml`` and ``config/swift-keystone.toml`` for
    every key with a comment.
    """

    auth_url: str
    container: str
    user: str | None = None
    key: str | None = None
    auth_version: str = "1.0"
    #: Keystone project (v3) or tenant (v2); ``project`` is accepted as alias.
    tenant: str | None = None
    project_id: str | None = None
    user_domain_name: str | None = None
    user_domain_id: str | None = None
    project_domain_name: str | None = None
    project_domain_id: str | None = None
    region: str | None = None
    #: Which catalog endpoint to use: public, internal or admin.
    interface: str | None = None
    service_type: str = "object-store"
    #: Use this storage URL instead of the one the auth service returns.
    endpoint_url: str | None = None
    segment_container: str | None = None
    segment_size: int = GIB
    retries: int = 3
    retry_backoff: float = 0.5
    max_backoff: float = 8.0
    timeout: float = 60.0
    pool_size: int = 8
    read_ahead: int = 64 << 20
    insecure: bool = False
    cacert: str | None = None
    create_container: bool = True

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> SwiftConfig:
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key == "type":
                continue
            if key in _REJECTED:
                raise BadParams(
                    f"backend.{key} is not a Swift option: {_REJECTED[key]}"
                )
            if key == "project":
                if "tenant" in table:
                    raise BadParams("give backend.tenant or backend.project, not both")
                key = "tenant"
            if key not in known:
                raise BadParams(
                    f"unknown Swift backend option {key!r} "
                    f"(known: {', '.join(sorted(known | {'project'}))})"
                )
            values[key] = value
        for required in ("auth_url", "container"):
            if not values.get(required):
                raise BadParams(f"backend.{required} is required for type 'swift'")
        return cls(**values)

    def __post_init__(self) -> None:
        _check_str(self, "auth_url", "container", "service_type")
        _check_str(
            self,
            "user",
            "key",
            "tenant",
            "project_id",
            "user_domain_name",
            "user_domain_id",
            "project_domain_name",
            "project_domain_id",
            "region",
            "interface",
            "endpoint_url",
            "segment_container",
            "cacert",
            optional=True,
        )
        version = _AUTH_VERSIONS.get(str(self.auth_version))
        if version is None:
            raise BadParams(
                f"backend.auth_version must be 1 (tempauth), 2 or 3 (Keystone), "
                f"not {self.auth_version!r}"
            )
        object.__setattr__(self, "auth_version", version)
        if not self.user or self.key is None:
            raise BadParams("backend.user and backend.key are required for Swift")
        if version != "1.0":
            if not (self.tenant or self.project_id):
                raise BadParams(
                    "Keystone auth needs backend.tenant (or backend.project / "
                    "backend.project_id)"
                )
            if importlib.util.find_spec("keystoneclient") is None:
                raise BadParams(
                    "Keystone auth (auth_version 2 or 3) needs python-keystoneclient: "
                    "pip install 'blobstore[keystone]'"
                )
        for name in (self.container, self.segments):
            if "/" in name or len(name.encode()) > 256:
                raise BadParams(
                    f"invalid Swift container name {name!r} (no '/', at most 256 bytes)"
                )
        if self.segments == self.container:
            raise BadParams(
                "backend.segment_container must differ from backend.container"
            )
        _check_int(self, "segment_size", 1, MAX_OBJECT_SIZE)
        _check_int(self, "retries", 0, 100)
        _check_int(self, "pool_size", 0, 1024)
        _check_int(self, "read_ahead", 1 << 16, 1 << 30)
        for name in ("retry_backoff", "max_backoff", "timeout"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or value <= 0
            ):
                raise BadParams(
                    f"backend.{name} must be a positive number, not {value!r}"
                )
        for name in ("insecure", "create_container"):
            if not isinstance(getattr(self, name), bool):
                raise BadParams(f"backend.{name} must be true or false")

    @property
    def segments(self) -> str:
        """The container that holds Static Large Object segments."""
        return self.segment_container or f"{self.container}_segments"

    def connection_kwargs(self) -> dict[str, Any]:
        """Arguments for :class:`swiftclient.client.Connection`."""
        os_options: dict[str, Any] = {"service_type": self.service_type}
        optional = {
            "region_name": self.region,
            "endpoint_type": self.interface,
            "object_storage_url": self.endpoint_url,
            "tenant_name": self.tenant,
            "project_name": self.tenant,
            "project_id": self.project_id,
            "tenant_id": self.project_id,
            "user_domain_name": self.user_domain_name,
            "user_domain_id": self.user_domain_id,
            "project_domain_name": self.project_domain_name,
            "project_domain_id": self.project_domain_id,
        }
        os_options.update({k: v for k, v in optional.items() if v is not None})
        return {
            "authurl": self.auth_url,
            "user": self.user,
            "key": self.key,
            "auth_version": self.auth_version,
            "tenant_name": self.tenant if self.auth_version == "2.0" else None,
            "os_options": os_options,
            "retries": self.retries,
            "starting_backoff": self.retry_backoff,
            "max_backoff": self.max_backoff,
            "timeout": self.timeout,
            "insecure": self.insecure,
            "cacert": self.cacert,
            "retry_on_ratelimit": True,
        }


def _check_str(config: SwiftConfig, *names: str, optional: bool = False) -> None:
    for name in names:
        value = getattr(config, name)
        if value is None and optional:
            continue
        if not isinstance(value, str) or not value:
            raise BadParams(f"backend.{name} must be a non-empty string, not {value!r}")


def _check_int(config: SwiftConfig, name: str, low: int, high: int) -> None:
    value = getattr(config, name)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not low <= value <= high
    ):
        raise BadParams(
            f"backend.{name} must be an integer in [{low}, {high}], not {value!r}"
        )
