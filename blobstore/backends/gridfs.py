"""The MongoDB GridFS backend: blob bytes in ``<prefix>.files`` / ``<prefix>.chunks``.

This is the reference implementation's own backend (charmstore keeps both its
metadata and its bytes in MongoDB), built on pymongo's
:class:`gridfs.GridFSBucket` with the bucket named after the configured
prefix, so a catalog and this backend sharing a prefix ``blobstore`` use
``blobstore.blobref``/``blobstore.upload``/... and ``blobstore.files``/
``blobstore.chunks`` side by side in one database.

Config (``[backend]`` with ``type = "gridfs"``):

``uri``
    MongoDB connection string (default ``mongodb://localhost:27017``).
    Driver options such as ``serverSelectionTimeoutMS`` or ``replicaSet`` go
    in the URI.
``database``
    Database name (default ``blobstore``).
``prefix``
    GridFS bucket name (default ``blobstore``).
``chunk_size``
    GridFS chunk size in bytes for new files (default 255 KiB, see
    ``bench/gridfs_chunk_size.py``). Existing files keep the chunk size they
    were written with, so it may be changed at any time.

Sharing a connection: ``GridFSBackend(..., client=mongo_client)`` (or
``GridFSBackend.from_config(table, client=mongo_client)``) uses an existing
:class:`pymongo.MongoClient` -- typically the MongoDB catalog's, so a
MongoDB-only deployment has one connection pool -- instead of connecting to
``uri``. The backend then never closes that client: its owner does. A
backend that made its own client makes a new one in a forked child (gunicorn
workers forked from a master that built it); a shared client is its owner's
to replace, so a service that shares one should build its store after fork.

How the Backend contract maps onto GridFS:

* ``put`` streams into a :class:`gridfs.GridIn` one chunk at a time; GridFS
  makes the file visible (its ``files`` document) only after every chunk is
  written, and if reading the stream raises (a wrong hash or size from the
  Store's verifying reader, a client that went away) the upload is aborted,
  which deletes the chunks written so far. Memory per put is bounded by the
  driver, which collects up to 48 MiB of chunks before inserting them in one
  batch (fewer round trips than a chunk at a time).
* ``open`` returns a seekable reader over a :class:`gridfs.GridOut` that turns
  GridFS's "file/chunk missing" errors, which are what a concurrent removal
  looks like halfway through a read, into
  :class:`~blobstore.errors.BlobNotFound`.
* ``remove`` deletes every file with that name, chunks *first*: if it is cut
  short, the ``files`` document survives, so the object stays listed and the
  next GC orphan sweep retries; deleting the document first would leave
  unlisted chunks that nothing ever reclaims.
* Connection failures and other driver errors become
  :class:`~blobstore.errors.Unavailable`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any
from typing import BinaryIO

import gridfs
import gridfs.errors
import pymongo
import pymongo.errors

from blobstore.backends.base import Backend
from blobstore.backends.base import ObjectInfo
from blobstore.backends.base import check_name
from blobstore.errors import BadParams
from blobstore.errors import BlobNotFound
from blobstore.errors import Unavailable
from blobstore.hashing import Readable
from blobstore.seeking import seek_position

if TYPE_CHECKING:
    from pymongo.collection import Collection
    from pymongo.database import Database

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_DATABASE",
    "DEFAULT_PREFIX",
    "DEFAULT_URI",
    "GridFSBackend",
]

log = logging.getLogger(__name__)

DEFAULT_URI = "mongodb://localhost:27017"
DEFAULT_DATABASE = "blobstore"
DEFAULT_PREFIX = "blobstore"
#: GridFS's own default, kept after comparing 1 MiB (bench/gridfs_chunk_size.py):
#: large transfers showed no consistent winner, while a ranged read always
#: fetches whole chunks, so bigger chunks make small ranges dearer.
DEFAULT_CHUNK_SIZE = 255 * 1024
#: A chunk is one BSON document, which MongoDB caps at 16 MiB (with room for
#: the document's other fields).
MAX_CHUNK_SIZE = 15 * 1024 * 1024
MIN_CHUNK_SIZE = 1024

# The indexes the GridFS spec prescribes, exactly as drivers create them (same
# keys, same default names) so creating them at start is a no-op on a bucket
# a driver already used. The files index serves our lookups by filename (it
# is the prefix of the key); the unique chunks index keeps reads in order.
_FILES_INDEX = [("filename", pymongo.ASCENDING), ("uploadDate", pymongo.ASCENDING)]
_CHUNKS_INDEX = [("files_id", pymongo.ASCENDING), ("n", pymongo.ASCENDING)]

_CONFIG_KEYS = frozenset({"type", "uri", "database", "prefix", "chunk_size"})


class GridFSBackend(Backend):
    """Objects as GridFS files, one per name. See the module docs.

    :param uri: MongoDB connection string; unused when *client* is given.
    :param database: the database holding the bucket.
    :param prefix: the bucket name (``<prefix>.files``, ``<prefix>.chunks``).
    :param chunk_size: GridFS chunk size in bytes for new files.
    :param client: an existing client to share (e.g. the MongoDB catalog's);
        the backend does not close it.
    :param create_indexes: create the GridFS indexes now (idempotent; needs
        the ``createIndex`` privilege).
    :raises BadParams: an invalid uri, chunk size or name.
    :raises Unavailable: MongoDB cannot be reached to create the indexes.
    """

    type_name = "gridfs"

    def __init__(
        self,
        uri: str = DEFAULT_URI,
        database: str = DEFAULT_DATABASE,
        prefix: str = DEFAULT_PREFIX,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        client: pymongo.MongoClient[Any] | None = None,
        create_indexes: bool = True,
    ) -> None:
        if (
            not isinstance(chunk_size, int)
            or isinstance(chunk_size, bool)
            or not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE
        ):
            raise BadParams(
                f"gridfs chunk_size must be an integer from {MIN_CHUNK_SIZE} "
                f"to {MAX_CHUNK_SIZE} bytes, not {chunk_size!r}"
            )
        for key, value in (("database", database), ("prefix", prefix)):
            if not isinstance(value, str) or not value:
                raise BadParams(f"gridfs {key} must be a non-empty string")
        self.chunk_size = chunk_size
        self.database = database
        self.prefix = prefix
        self._uri = uri
        self._owns_client = client is None
        self._pid = os.getpid()
        self._bind(client if client is not None else self._connect())
        if create_indexes:
            try:
                with _mongo_errors(
                    f"cannot create the indexes of gridfs bucket {prefix}"
                ):
                    self._files.create_index(_FILES_INDEX)
                    self._chunks.create_index(_CHUNKS_INDEX, unique=True)
            except BaseException:
                self.close()  # do not leak the connection pool of a failed start
                raise

    def _connect(self) -> pymongo.MongoClient[Any]:
        try:
            # tz_aware so that uploadDate comes back as an aware UTC time.
            return pymongo.MongoClient(self._uri, tz_aware=True, appname="blobstore")
        except (pymongo.errors.ConfigurationError, ValueError, TypeError) as exc:
            raise BadParams(f"invalid gridfs uri {self._uri!r}: {exc}") from exc

    def _bind(self, client: pymongo.MongoClient[Any]) -> None:
        self._client = client
        self._db: Database[Any] = client[self.database]
        self._bucket = gridfs.GridFSBucket(
            self._db, bucket_name=self.prefix, chunk_size_bytes=self.chunk_size
        )
        self._files: Collection[Any] = self._db[f"{self.prefix}.files"]
        self._chunks: Collection[Any] = self._db[f"{self.prefix}.chunks"]

    def _after_fork(self) -> None:
        # A MongoClient must not be used across fork (gunicorn workers forked
        # from a master that built the backend): a child connects afresh. A
        # shared client is its owner's to replace.
        if self._owns_client and self._pid != os.getpid():
            self._bind(self._connect())
            self._pid = os.getpid()

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        client: pymongo.MongoClient[Any] | None = None,
    ) -> GridFSBackend:
        """Build from a ``[backend]`` table; *client* shares a connection."""
        unknown = sorted(set(config) - _CONFIG_KEYS)
        if unknown:
            raise BadParams(
                f"unknown gridfs backend setting(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(_CONFIG_KEYS - {'type'}))})"
            )
        kwargs = {k: v for k, v in config.items() if k != "type"}
        return cls(**kwargs, client=client)

    # -- the Backend contract ------------------------------------------------

    def put(self, name: str, stream: Readable, size: int | None = None) -> None:
        check_name(name)
        self._after_fork()
        with _mongo_errors(f"cannot store {name!r} in gridfs"):
            grid_in = self._bucket.open_upload_stream(name)
        try:
            while True:
                # Errors reading the stream (a bad hash, a client that went
                # away) propagate unchanged; only errors talking to MongoDB
                # become Unavailable.
                chunk = _read_chunk(stream, self.chunk_size)
                if not chunk:
                    break
                with _mongo_errors(f"cannot store {name!r} in gridfs"):
                    # Whole chunks skip GridFS's partial-chunk buffer; the
                    # driver batches their inserts (up to 48 MiB per batch).
                    grid_in.write(chunk)
            with _mongo_errors(f"cannot store {name!r} in gridfs"):
                grid_in.close()
        except BaseException:
            self._abort(grid_in, name)
            raise

    def _abort(self, grid_in: gridfs.GridIn, name: str) -> None:
        # Deletes the chunks already inserted (and the files document, had
        # close() got that far). If MongoDB is gone this fails too; the
        # original error is the one to report, so log and move on.
        try:
            grid_in.abort()
        except pymongo.errors.PyMongoError as exc:
            log.warning(
                "cannot abort the gridfs upload of %s (file id %s): %s",
                name,
                grid_in._id,
                exc,
            )

    def open(self, name: str) -> tuple[BinaryIO, int]:
        check_name(name)
        self._after_fork()
        try:
            with _mongo_errors(f"cannot open {name!r} in gridfs"):
                grid_out = self._bucket.open_download_stream_by_name(name)
        except gridfs.errors.NoFile:
            raise BlobNotFound(f"backend object {name!r} not found") from None
        reader = GridFSReader(grid_out, name)
        return reader, reader.size  # type: ignore[return-value]

    def remove(self, name: str) -> None:
        check_name(name)
        self._after_fork()
        with _mongo_errors(f"cannot remove {name!r} from gridfs"):
            ids = [doc["_id"] for doc in self._files.find({"filename": name}, ["_id"])]
            if not ids:
                return
            # Chunks first: see the module docs.
            self._chunks.delete_many({"files_id": {"$in": ids}})
            self._files.delete_many({"_id": {"$in": ids}})

    def list(self) -> Iterator[ObjectInfo]:
        self._after_fork()
        with _mongo_errors("cannot list gridfs files"):
            cursor = self._files.find({}, ["filename", "length", "uploadDate"])
            try:
                for doc in cursor:
                    name = doc.get("filename")
                    # A file under a name this backend could never have made
                    # (written by something else sharing the bucket) is not
                    # ours to report: the GC would try to remove it by name.
                    if not isinstance(name, str) or not _is_backend_name(name):
                        log.debug("ignoring foreign gridfs file %r", name)
                        continue
                    yield ObjectInfo(name, int(doc["length"]), _utc(doc["uploadDate"]))
            finally:
                cursor.close()

    def check(self) -> None:
        self._after_fork()
        with _mongo_errors("mongodb is unreachable"):
            self._db.command("ping")

    def stats(self) -> dict[str, Any]:
        self._after_fork()
        with _mongo_errors("cannot count gridfs files"):
            files = self._files.estimated_document_count()
        return {
            "database": self._db.name,
            "bucket": self.prefix,
            "chunk_size": self.chunk_size,
            "files": files,
        }

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


class GridFSReader(io.RawIOBase):
    """A seekable reader of one GridFS file with ``io`` semantics.

    GridFS reports a file removed while it is being read as a missing chunk
    (:class:`gridfs.errors.CorruptGridFile`) or a missing file
    (:class:`gridfs.errors.NoFile`); both surface here as
    :class:`~blobstore.errors.BlobNotFound`, as the Backend contract asks.
    """

    def __init__(self, grid_out: gridfs.GridOut, name: str) -> None:
        super().__init__()
        self._out = grid_out
        self.name = name
        self.size: int = int(grid_out.length)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        self._check_closed()
        with self._errors():
            return self._out.read(-1 if size is None else size)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        n = len(data)
        view[:n] = data
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_closed()
        new = seek_position(self._out.tell(), self.size, offset, whence)
        return self._out.seek(new)

    def tell(self) -> int:
        self._check_closed()
        return self._out.tell()

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(pymongo.errors.PyMongoError):
                self._out.close()  # releases the chunk cursor
        super().close()

    def _check_closed(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (gridfs.errors.NoFile, gridfs.errors.CorruptGridFile) as exc:
            raise BlobNotFound(
                f"backend object {self.name!r} removed while being read ({exc})"
            ) from exc
        except pymongo.errors.PyMongoError as exc:
            raise Unavailable(f"cannot read {self.name!r} from gridfs: {exc}") from exc


def _read_chunk(stream: Readable, size: int) -> bytes:
    """Read up to *size* bytes, short only at the end of *stream*.

    Handing GridFS whole chunks lets it store each one as it comes, without
    copying it through its own partial-chunk buffer.
    """
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        first = stream.read(size)
        if len(first) == size or not first:
            return first
        parts = [first]
        got = len(first)
        while got < size and (more := stream.read(size - got)):
            parts.append(more)
            got += len(more)
        return b"".join(parts)
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = readinto(view[got:])
        if not n:
            break
        got += n
    view.release()
    del buf[got:]
    return bytes(buf)


def _is_backend_name(name: str) -> bool:
    try:
        check_name(name)
    except ValueError:
        return False
    return True


def _utc(value: datetime) -> datetime:
    # A shared client may not be tz_aware; BSON dates are always UTC.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@contextlib.contextmanager
def _mongo_errors(what: str) -> Iterator[None]:
    """Turn driver failures into Unavailable; GridFS's NoFile passes through."""
    try:
        yield
    except gridfs.errors.NoFile:
        raise
    except pymongo.errors.PyMongoError as exc:
        raise Unavailable(f"{what}: {exc}") from exc
