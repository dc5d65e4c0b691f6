"""The façade's configuration and the per-request context handlers get.

:class:`S3Config` is the ``[s3]`` table of the service configuration::

    [s3]
    enabled = true
    region = "us-east-1"            # what clients must sign for
    multipart_expiry = "7d"         # seconds, or "30m", "12h", "7d", "1d12h"
    [[s3.credentials]]
    access_key = "AKIA..."
    secret_key = "..."
    owner = "alice"                 # optional; default: the access key

Each access key acts as one owner: buckets belong to the owner that created
them, and only that owner can use them. Keys that share an ``owner`` share
buckets (for key rotation).

:func:`parse_target` splits the request target into bucket, key and query
from the raw URI the client sent (gunicorn's ``RAW_URI``), so keys keep
``%2F``, ``+``, spaces and any UTF-8 exactly; the key is only ever a catalog
value, never a file path.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from typing import Any
from urllib.parse import quote
from urllib.parse import unquote_to_bytes

import falcon

from blobstore import units
from blobstore.config.schema import S3_KEYS
from blobstore.errors import InvalidBucketName
from blobstore.errors import InvalidKey
from blobstore.records import BucketRecord
from blobstore.s3.objects import DEFAULT_MULTIPART_EXPIRY
from blobstore.s3.objects import ObjectStore
from blobstore.s3.rules import MAX_PARTS
from blobstore_api.s3.errors import AccessDenied
from blobstore_api.s3.errors import InvalidArgument
from blobstore_api.s3.errors import InvalidURI
from blobstore_api.s3.payload import Body
from blobstore_api.s3.payload import open_body
from blobstore_api.s3.sigv4 import Credential
from blobstore_api.s3.sigv4 import Identity

__all__ = ["Context", "S3Config", "Target", "parse_duration", "parse_target"]


def parse_duration(value: object) -> timedelta:
    """A positive duration (:func:`blobstore.units.parse_duration`'s grammar).

    :raises ValueError: not a duration, or not positive.
    """
    duration = units.parse_duration(value)
    if duration <= timedelta(0):
        raise ValueError(f"must be a positive duration, not {value!r}")
    return duration


@dataclass(frozen=True)
class S3Config:
    region: str = "us-east-1"
    credentials: tuple[Credential, ...] = ()
    multipart_expiry: timedelta = DEFAULT_MULTIPART_EXPIRY

    #: The keys of ``[s3]`` and of each ``[[s3.credentials]]`` table.
    KEYS = S3_KEYS
    CREDENTIAL_KEYS = ("access_key", "secret_key", "owner")

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> S3Config:
        """Parse the raw ``[s3]`` table. :raises ValueError: a bad setting."""
        _refuse_unknown("[s3]", config, cls.KEYS)
        region = config.get("region", "us-east-1")
        if not isinstance(region, str) or not region:
            raise ValueError(f"[s3] region must be a non-empty string, not {region!r}")
        raw = config.get("credentials", [])
        if isinstance(raw, Mapping):
            raw = [raw]
        if not isinstance(raw, Sequence) or isinstance(raw, str):
            raise ValueError("[s3] credentials must be a list of tables")
        credentials: list[Credential] = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, Mapping):
                raise ValueError(f"[s3] credentials[{i}] must be a table")
            _refuse_unknown(f"[s3] credentials[{i}]", entry, cls.CREDENTIAL_KEYS)
            access = entry.get("access_key")
            secret = entry.get("secret_key")
            owner = entry.get("owner", access)
            for name, value in (
                ("access_key", access),
                ("secret_key", secret),
                ("owner", owner),
            ):
                if not isinstance(value, str) or not value:
                    raise ValueError(
                        f"[s3] credentials[{i}].{name} must be a non-empty string"
                    )
            if any(c.access_key == access for c in credentials):
                raise ValueError(f"[s3] access key {access!r} is listed twice")
            credentials.append(Credential(access, secret, owner))
        if not credentials:
            raise ValueError("[s3] needs at least one [[s3.credentials]] entry")
        expiry = config.get("multipart_expiry")
        try:
            multipart_expiry = (
                DEFAULT_MULTIPART_EXPIRY if expiry is None else parse_duration(expiry)
            )
        except ValueError as exc:
            raise ValueError(f"[s3] multipart_expiry {exc}") from None
        return cls(region, tuple(credentials), multipart_expiry)


def _refuse_unknown(where: str, table: Mapping[str, Any], known: Sequence[str]) -> None:
    for key in table:
        if key not in known:
            raise ValueError(
                f"{where} {key} is not a known key (known: {', '.join(known)})"
            )


@dataclass(frozen=True, slots=True)
class Target:
    """The request target: ``/``, ``/bucket`` or ``/bucket/key``."""

    raw_path: str
    path: str
    query: tuple[tuple[str, str], ...]
    bucket: str | None
    key: str | None


def _decode(text: str, what: str) -> str:
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidURI(f"the {what} is not valid UTF-8") from None


def parse_target(env: Mapping[str, Any]) -> Target:
    raw = env.get("RAW_URI") or env.get("REQUEST_URI")
    if raw:
        if "://" in raw.split("?", 1)[0]:  # absolute-form request target
            raw = "/" + raw.split("://", 1)[1].partition("/")[2]
        raw_path, _, raw_query = raw.partition("?")
        raw_path = raw_path.partition("#")[0]
        path = _decode(raw_path, "path")
    else:
        path_bytes = env.get("PATH_INFO", "").encode("latin-1")
        try:
            path = path_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidURI("the path is not valid UTF-8") from None
        raw_path = quote(path, safe="/")
        raw_query = env.get("QUERY_STRING", "")
    query = []
    for item in raw_query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        query.append((_decode(name, "query"), _decode(value, "query")))
    if not path.startswith("/"):
        raise InvalidURI("the path must start with /")
    bucket, _, key = path[1:].partition("/")
    return Target(raw_path, path, tuple(query), bucket or None, key or None)


def request_headers(env: Mapping[str, Any]) -> dict[str, str]:
    """Lowercase header names → values, from a WSGI environ."""
    headers = {
        name[5:].replace("_", "-").lower(): value
        for name, value in env.items()
        if name.startswith("HTTP_")
    }
    if env.get("CONTENT_TYPE"):
        headers["content-type"] = env["CONTENT_TYPE"]
    if env.get("CONTENT_LENGTH"):
        headers["content-length"] = env["CONTENT_LENGTH"]
    return headers


@dataclass
class Context:
    """What a handler needs: the object layer, who is asking, and the target."""

    objects: ObjectStore
    config: S3Config
    identity: Identity
    target: Target
    query: dict[str, str] = field(default_factory=dict)

    @property
    def bucket(self) -> str:
        if self.target.bucket is None:  # the router sends only bucket requests
            raise InvalidBucketName("this request names no bucket")
        return self.target.bucket

    @property
    def key(self) -> str:
        if self.target.key is None:  # the router sends only object requests
            raise InvalidKey("this request names no key")
        return self.target.key

    @property
    def owner(self) -> str:
        return self.identity.owner

    def owned_bucket(self, name: str | None = None) -> BucketRecord:
        """The bucket, if it exists and belongs to the requester.

        :raises NoSuchBucket: (from the library) :raises AccessDenied:
        """
        record = self.objects.get_bucket(name or self.bucket)
        if record.owner != self.owner:
            raise AccessDenied(f"bucket {record.name!r} belongs to another owner")
        return record

    def body(self, req: falcon.Request) -> Body:
        return open_body(req, self.identity)

    def int_param(
        self, name: str, default: int, low: int, high: int | None = None
    ) -> int:
        """An integer query parameter, clamped to *high*; below *low* → error."""
        text = self.query.get(name)
        if text is None or text == "":
            return default
        try:
            value = int(text)
        except ValueError:
            raise InvalidArgument(
                f"Provided {name} not an integer or within integer range",
                ArgumentName=name,
                ArgumentValue=text,
            ) from None
        if value < low:
            raise InvalidArgument(
                f"Argument {name} must be an integer between {low} and 2147483647",
                ArgumentName=name,
                ArgumentValue=text,
            )
        return value if high is None else min(value, high)


def parse_part_number(text: str) -> int:
    """A ``partNumber`` query value: an integer from 1 to 10000."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PARTS:
        raise InvalidArgument(
            f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=text,
        )
    return number
