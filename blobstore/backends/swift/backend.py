"""The Swift backend: blob bytes as objects in an OpenStack Swift container.

How each operation maps onto Swift (the modules beside this one do the work):

* ``put`` streams the body to Swift while the Store's verifying reader
  hashes it, as one object or, above ``segment_size``, as a Static Large
  Object whose segments live in ``<container>_segments``
  (:mod:`~blobstore.backends.swift.upload`).
* ``open`` GETs the object's first window (which also gives its size) and
  returns a seekable reader that fetches further ranged windows as it is
  read (:mod:`~blobstore.backends.swift.reader`).
* ``remove`` deletes the object (an SLO's manifest first, so readers see it
  gone at once), then whatever segments are stored under its name. Both
  steps treat "not found" as done, so it is idempotent, and a remove that
  failed halfway finishes when repeated.
* ``list`` pages through the container listing with markers. Segments are
  not objects of their own, but segments whose manifest never got written
  (a put killed mid-upload) are reported under their blob's name, with their
  total size and newest time, so the GC's orphan sweep removes them too.

Every Swift request goes through a pooled swiftclient connection
(:mod:`~blobstore.backends.swift.pool`): connection errors and 5xx answers
are retried with backoff when the request can be repeated, a 401 renews the
token once, and what still fails becomes
:class:`~blobstore.errors.Unavailable` naming the container and object.

The containers are created at start when missing. If Swift cannot be reached
then, the backend still starts (so a service can come up and report itself
not ready) and tries again on first use; :meth:`SwiftBackend.check` reports
the outage.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import BinaryIO

from swiftclient.client import Connection

from blobstore.backends.base import Backend
from blobstore.backends.base import ObjectInfo
from blobstore.backends.base import check_name
from blobstore.backends.swift.config import SwiftConfig
from blobstore.backends.swift.pool import SWIFT_ERRORS
from blobstore.backends.swift.pool import ConnectionPool
from blobstore.backends.swift.pool import delete_object
from blobstore.backends.swift.pool import is_not_found
from blobstore.backends.swift.pool import listing
from blobstore.backends.swift.pool import translate
from blobstore.backends.swift.reader import SwiftReader
from blobstore.backends.swift.upload import Uploader
from blobstore.errors import BadParams
from blobstore.errors import Unavailable
from blobstore.hashing import Readable

__all__ = ["SwiftBackend"]

log = logging.getLogger(__name__)


class SwiftBackend(Backend):
    """Objects in one Swift container (SLO segments in a second one).

    Takes the keys of the ``[backend]`` table as keyword arguments; see
    :class:`~blobstore.backends.swift.config.SwiftConfig`.
    """

    type_name = "swift"

    def __init__(self, **options: Any) -> None:
        self.config = SwiftConfig.from_mapping(options)
        self.container = self.config.container
        self.segments = self.config.segments
        kwargs = self.config.connection_kwargs()
        self._pool = ConnectionPool(lambda: Connection(**kwargs), self.config.pool_size)
        self._uploader = Uploader(
            self._pool, self.container, self.segments, self.config.segment_size
        )
        self._ready = False
        self._ready_lock = threading.Lock()
        try:
            self._ensure_ready()
        except Unavailable as exc:
            log.warning("Swift backend starts without Swift (will retry): %s", exc)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SwiftBackend:
        return cls(**{k: v for k, v in config.items() if k != "type"})

    # -- the Backend contract ------------------------------------------------

    def put(self, name: str, stream: Readable, size: int | None = None) -> None:
        check_name(name)
        self._ensure_ready()
        self._uploader.put(name, stream, size)

    def open(self, name: str) -> tuple[BinaryIO, int]:
        check_name(name)
        reader = SwiftReader.open(
            self._pool, self.container, name, self.config.read_ahead
        )
        return reader, reader.size  # type: ignore[return-value]

    def remove(self, name: str) -> None:
        check_name(name)
        try:
            with self._pool.connection() as conn:
                delete_object(conn, self.container, name)
            # An SLO's segments (or what a failed put left behind).
            for entry in listing(
                self._pool, self.segments, missing_ok=True, prefix=f"{name}/"
            ):
                with self._pool.connection() as conn:
                    delete_object(conn, self.segments, entry["name"])
        except SWIFT_ERRORS as exc:
            raise translate(exc, f"remove object '{self.container}/{name}'") from exc

    def list(self) -> Iterator[ObjectInfo]:
        try:
            # Blob names that have segments (one "subdir" each).
            segmented = {
                entry["subdir"].rstrip("/")
                for entry in listing(
                    self._pool, self.segments, missing_ok=True, delimiter="/"
                )
                if "subdir" in entry
            }
            for entry in listing(self._pool, self.container):
                name = entry["name"]
                segmented.discard(name)
                if _valid(name):
                    yield ObjectInfo(name, int(entry["bytes"]), _mtime(entry))
            for name in sorted(segmented):
                # Segments without a manifest: a put that died (or is still
                # writing: the newest segment's time keeps it inside the
                # GC's grace period).
                entries = list(
                    listing(
                        self._pool, self.segments, missing_ok=True, prefix=f"{name}/"
                    )
                )
                if entries and _valid(name):
                    yield ObjectInfo(
                        name,
                        sum(int(e["bytes"]) for e in entries),
                        max(_mtime(e) for e in entries),
                    )
        except SWIFT_ERRORS as exc:
            raise translate(exc, f"list container '{self.container}'") from exc

    def check(self) -> None:
        # One attempt, no retries: a readiness probe wants a quick answer.
        self._ensure_ready(retries=0)
        try:
            with self._pool.connection(retries=0) as conn:
                conn.head_container(self.container)
        except SWIFT_ERRORS as exc:
            if is_not_found(exc):
                raise Unavailable(
                    f"Swift container '{self.container}' does not exist"
                ) from None
            raise translate(exc, f"reach container '{self.container}'") from exc

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"container": self.container}
        try:
            with self._pool.connection() as conn:
                for key, container in (
                    ("", self.container),
                    ("segment_", self.segments),
                ):
                    headers = conn.head_container(container)
                    out[f"{key}objects"] = int(
                        headers.get("x-container-object-count", 0)
                    )
                    out[f"{key}bytes"] = int(headers.get("x-container-bytes-used", 0))
        except SWIFT_ERRORS as exc:
            raise translate(exc, f"stat container '{self.container}'") from exc
        return out

    def close(self) -> None:
        self._pool.close()

    # -- internals ---------------------------------------------------------------

    def _ensure_ready(self, *, retries: int | None = None) -> None:
        """Create the containers if missing and learn Swift's limits, once."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            try:
                with self._pool.connection(retries=retries) as conn:
                    for container in (self.container, self.segments):
                        self._ensure_container(conn, container)
                    info = _capabilities(conn)
            except SWIFT_ERRORS as exc:
                raise translate(exc, f"set up container '{self.container}'") from exc
            self._apply_limits(info)
            self._ready = True

    def _ensure_container(self, conn: Connection, container: str) -> None:
        try:
            conn.head_container(container)
            return
        except SWIFT_ERRORS as exc:
            if not is_not_found(exc):
                raise
        if not self.config.create_container:
            raise Unavailable(
                f"Swift container '{container}' does not exist "
                "(and backend.create_container is false)"
            )
        conn.put_container(container)

    def _apply_limits(self, info: Mapping[str, Any]) -> None:
        max_file = info.get("swift", {}).get("max_file_size")
        if max_file is not None and self.config.segment_size > int(max_file):
            raise BadParams(
                f"backend.segment_size {self.config.segment_size} is above this "
                f"Swift's max_file_size {max_file}"
            )
        slo = info.get("slo")
        if slo is None:
            log.warning("Swift at %s does not report SLO support", self.config.auth_url)
        else:
            self._uploader.max_segments = int(slo.get("max_manifest_segments", 1000))


def _capabilities(conn: Connection) -> Mapping[str, Any]:
    """Swift's /info, or nothing if this cluster does not publish it."""
    try:
        return conn.get_capabilities()
    except SWIFT_ERRORS as exc:
        if getattr(exc, "http_status", None) is None:
            raise  # Swift unreachable: not ready
        log.warning("Swift does not publish /info (%s); assuming its defaults", exc)
        return {}


def _valid(name: str) -> bool:
    try:
        check_name(name)
    except ValueError:
        return False  # not one of ours: never hand it to remove()
    return True


def _mtime(entry: Mapping[str, Any]) -> datetime:
    # Listings give UTC without a zone: "2024-05-01T12:00:00.123456".
    return datetime.fromisoformat(entry["last_modified"]).replace(tzinfo=UTC)
