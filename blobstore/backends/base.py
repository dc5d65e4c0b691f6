"""The Backend contract: where the bytes of blobs live.

A backend stores opaque byte objects under opaque names that the Store makes
up (never user input). It knows nothing of hashes, uploads, HTTP or metadata:
the catalog decides what exists, the backend only holds bytes. Together,
:meth:`Backend.put`, :meth:`Backend.open`, :meth:`Backend.remove` and
:meth:`Backend.list` are the whole pluggable API; everything else in a
backend module is its own business.

The rules every backend follows (``tests/backend_contract.py`` checks them):

* ``put(name, stream, size)`` reads *stream* to its end and stores what it
  read under *name*. If reading raises (the Store's verifying reader raises
  on a wrong hash or size, a client may disconnect), the exception propagates
  and nothing is left under *name*: no partial object is ever readable.
* ``open(name)`` returns a seekable binary reader positioned at 0 and the
  object's size. A missing object raises :class:`~blobstore.errors.BlobNotFound`,
  also when it disappears while being read.
* ``remove(name)`` is idempotent: removing a missing object succeeds.
* ``list()`` yields every stored object with its size and modification time,
  so the garbage collector can sweep objects no catalog record points at.
* A backend that cannot reach its storage raises
  :class:`~blobstore.errors.Unavailable`.

Two optional hooks let the Store pass on what it knows and a backend does not
(the defaults ignore it, so a backend that does not care overrides nothing):

* ``open_blob(name, hash)`` is ``open(name)`` for an object the Store knows
  holds the blob with SHA-384 *hash*. The Store always opens through it; the
  read cache (:mod:`blobstore.backends.cache`) uses the hash to verify what it
  copies from the remote before it keeps it.
* ``prefetch(name, hash)`` says the object will probably be read soon (the
  next part of a composite blob being read). It must return at once and never
  fail; a caching backend starts fetching in the background.

Backends are registered by their config ``type`` name in the
``blobstore.backends`` entry-point group (see :mod:`blobstore.registry`), and
built with :meth:`Backend.from_config`.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import BinaryIO
from typing import ClassVar

from blobstore.backends.healing import HealProgress
from blobstore.backends.healing import HealReport
from blobstore.backends.healing import no_redundancy
from blobstore.hashing import Readable

__all__ = ["Backend", "ObjectInfo", "check_name"]

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def check_name(name: str) -> str:
    """Reject backend names that could escape a directory or a container.

    The Store only makes names of hex digits and hyphens; this is a second
    line of defence so that no backend ever builds a path from odd input.
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(f"invalid backend object name {name!r}")
    return name


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One stored object, as :meth:`Backend.list` reports it."""

    name: str
    size: int
    mtime: datetime


class Backend(abc.ABC):
    """Stores and serves byte objects by opaque name. See the module docs."""

    #: The config ``type`` this backend answers to.
    type_name: ClassVar[str] = ""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Backend:
        """Build the backend from its ``[backend]`` config table.

        The default passes every key except ``type`` as a keyword argument.
        """
        kwargs = {k: v for k, v in config.items() if k != "type"}
        return cls(**kwargs)

    @abc.abstractmethod
    def put(self, name: str, stream: Readable, size: int | None = None) -> None:
        """Store everything *stream* yields under *name*.

        :param size: the expected size when known (a hint for preallocation or
            Content-Length; the stream itself enforces it).
        """

    @abc.abstractmethod
    def open(self, name: str) -> tuple[BinaryIO, int]:
        """Return a seekable reader of the object and its size."""

    def open_blob(self, name: str, hash: str) -> tuple[BinaryIO, int]:
        """:meth:`open` an object known to hold the blob with SHA-384 *hash*.

        The default ignores the hash; see the module docs.
        """
        return self.open(name)

    def prefetch(self, name: str, hash: str | None = None) -> None:  # noqa: B027
        """Hint that *name* will probably be read soon; a no-op by default.

        Must return at once and never raise: it is only a hint.
        """

    @abc.abstractmethod
    def remove(self, name: str) -> None:
        """Remove the object; a missing object is not an error."""

    @abc.abstractmethod
    def list(self) -> Iterator[ObjectInfo]:
        """Yield every stored object."""

    def check(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Raise :class:`~blobstore.errors.Unavailable` if storage is unreachable."""

    def stats(self) -> dict[str, Any]:
        """Backend-specific figures (capacity, drive health) for /v1/stats.

        A backend over several drives lists them as ``"drives": [{"path":
        ..., "online": bool, "free_bytes": ..., "total_bytes": ...}]``; the
        operator tools and ``/metrics`` read that shape.
        """
        return {}

    @property
    def can_heal(self) -> bool:
        """Whether the backend keeps redundancy it can rebuild lost or
        damaged copies from (then :meth:`heal` works)."""
        return False

    def needs_heal(self) -> set[str]:
        """Names this process saw damaged or short of redundancy while
        reading them (to heal before judging them); none by default."""
        return set()

    @property
    def origin(self) -> Backend:
        """The backend that holds the objects at rest: this one, or what a
        read cache sits in front of. Checking bytes means reading them
        there, not a cached copy."""
        return self

    def heal(
        self, name: str | None = None, progress: HealProgress | None = None
    ) -> HealReport:
        """Rebuild lost or damaged redundancy of object *name*, or of every
        object; see :mod:`blobstore.backends.healing`.

        :raises BadParams: the backend keeps no redundancy (the default).
        :raises BlobNotFound: no object *name*.
        """
        raise no_redundancy(self)

    def purge_trash(self) -> int:
        """Empty any trash of removed objects now (and sweep crashed writes'
        temp files); return how many entries went. A backend that removes at
        once has none: 0."""
        return 0

    def metric_collectors(self, *, include_counters: bool = True) -> list[Any]:
        """Prometheus collectors of the backend's own figures (the read cache
        has some); none by default. *include_counters* False leaves out the
        counters a multiprocess server already gathers from its files."""
        return []

    def close(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Release connections and files."""
