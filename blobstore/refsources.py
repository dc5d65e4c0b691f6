"""External GC roots: where artifact stores keep the hashes they use.

The garbage collector keeps every blob that some root names. The store's own
roots (named refs, uploads, S3 objects, composites) are built in; an artifact
store that records blob hashes in its own database adds a :class:`RefSource`
in config (``[gc] ref_sources``) so GC knows about them. A source that fails
to read aborts the GC run before anything is deleted: a missing kind of ref
means data loss.
"""

from __future__ import annotations

import abc
import sys
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from blobstore.errors import BadParams

__all__ = [
    "FileRefSource",
    "IterableRefSource",
    "MongoRefSource",
    "RefSource",
    "hashes_in",
    "ref_source_from_config",
]


class RefSource(abc.ABC):
    """Yields hex SHA-384 hashes of blobs that must be kept."""

    @abc.abstractmethod
    def hashes(self) -> Iterator[str]:
        """Every hash this source references (malformed values are skipped)."""

    def describe(self) -> str:
        return type(self).__name__


class IterableRefSource(RefSource):
    """Hashes from any iterable (handy from Python)."""

    def __init__(self, hashes: Iterable[str], name: str = "iterable") -> None:
        self._hashes = hashes
        self._name = name

    def hashes(self) -> Iterator[str]:
        yield from self._hashes

    def describe(self) -> str:
        return self._name


class FileRefSource(RefSource):
    """One hash per line in a text file (``-`` for standard input); blank
    lines and ``#`` comments are ignored."""

    def __init__(self, path: str) -> None:
        self.path = path

    def hashes(self) -> Iterator[str]:
        if self.path == "-":
            yield from _lines(sys.stdin)
            return
        with Path(self.path).open(encoding="ascii") as f:
            yield from _lines(f)

    def describe(self) -> str:
        return f"file {self.path}"


def _lines(f: Iterable[str]) -> Iterator[str]:
    for line in f:
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


class MongoRefSource(RefSource):
    """The values at a dotted field path in every document of a MongoDB
    collection: hashes, lists of hashes, part indexes (``{"hashes": [...]}``)
    or the reference's compact binary list of 48-byte digests.

    Without *client*, a client of its own is made for each read and closed
    after it: every process that builds the store from config (each server
    worker, too) gets the source, but only the GC job reads it, so nothing
    connects to the artifact store's database until then. The URI is checked
    at once, so a bad one is a configuration error.
    """

    def __init__(
        self,
        uri: str,
        database: str,
        collection: str,
        field: str,
        *,
        client: Any = None,
    ) -> None:
        if client is None:
            _check_uri(uri)
        self._uri = uri
        self._client = client
        self._names = (database, collection)
        self.field = field
        self._label = f"mongodb {database}.{collection}:{field}"

    def hashes(self) -> Iterator[str]:
        client = self._client
        if client is None:
            import pymongo

            client = pymongo.MongoClient(self._uri, serverSelectionTimeoutMS=10000)
        try:
            database, collection = self._names
            cursor = client[database][collection].find(
                {self.field: {"$exists": True}},
                {self.field: 1, "_id": 0},
                batch_size=5000,
            )
            for doc in cursor:
                yield from hashes_in(_dig(doc, self.field.split(".")))
        finally:
            if client is not self._client:
                client.close()

    def describe(self) -> str:
        return self._label


def _check_uri(uri: object) -> None:
    """Refuse a malformed MongoDB URI without connecting (an SRV URI's
    hosts are only looked up when the source is read)."""
    if not isinstance(uri, str) or not uri.startswith(("mongodb://", "mongodb+srv://")):
        raise BadParams(
            f"gc.ref_sources: mongodb uri must start with mongodb:// or "
            f"mongodb+srv://, not {uri!r}"
        )
    if uri.startswith("mongodb://"):
        from pymongo.errors import ConfigurationError
        from pymongo.uri_parser import parse_uri

        try:
            parse_uri(uri)
        except (ConfigurationError, ValueError) as exc:
            raise BadParams(f"gc.ref_sources: bad mongodb uri: {exc}") from None


def _dig(value: Any, path: list[str]) -> Iterator[Any]:
    """Every value at *path*, descending through lists as MongoDB does."""
    if not path:
        yield value
        return
    if isinstance(value, list):
        for item in value:
            yield from _dig(item, path)
    elif isinstance(value, Mapping) and path[0] in value:
        yield from _dig(value[path[0]], path[1:])


def hashes_in(values: Iterable[Any]) -> Iterator[str]:
    """Flatten the shapes a stored reference can take into hex hashes."""
    for value in values:
        if isinstance(value, str):
            yield value
        elif isinstance(value, bytes) and len(value) % 48 == 0:
            for i in range(0, len(value), 48):
                yield value[i : i + 48].hex()
        elif isinstance(value, Mapping):
            yield from hashes_in([value.get("hashes", [])])
        elif isinstance(value, list):
            yield from hashes_in(value)


def ref_source_from_config(config: Mapping[str, Any]) -> RefSource:
    """Build a source from one ``[[gc.ref_sources]]`` table."""
    kind = config.get("type")
    if kind == "file":
        return FileRefSource(str(config["path"]))
    if kind == "mongodb":
        try:
            return MongoRefSource(
                config["uri"], config["database"], config["collection"], config["field"]
            )
        except KeyError as exc:
            raise BadParams(
                f"gc.ref_sources: mongodb source needs {exc.args[0]!r}"
            ) from None
    raise BadParams(
        f"gc.ref_sources: unknown type {kind!r} (expected 'file' or 'mongodb')"
    )
