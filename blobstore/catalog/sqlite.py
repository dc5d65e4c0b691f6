"""SQLiteCatalog: the embedded, single-node catalog.

One database file in WAL mode, shared safely by every thread and every
gunicorn worker process on the host: each thread of each process has its own
connection (reopened after a fork), every conditional update of the Store is a
single SQL statement or an ``IMMEDIATE`` transaction, and writers wait on the
database lock (``busy_timeout``) instead of failing. ``synchronous=FULL``:
once the Store tells a client its blob is stored, a power cut does not lose
the record.

Times are stored as integer milliseconds since the epoch; S3 keys as UTF-8
BLOBs so that SQLite's ordering is S3's (byte order).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

from blobstore.catalog.base import Catalog
from blobstore.catalog.guard import guard_public_methods
from blobstore.errors import BlobStoreError
from blobstore.errors import Conflict
from blobstore.errors import InsufficientStorage
from blobstore.errors import Unavailable
from blobstore.keys import prefix_upper_bound
from blobstore.records import BlobRecord
from blobstore.records import BlobTotals
from blobstore.records import BucketRecord
from blobstore.records import MultipartIndex
from blobstore.records import ObjectRecord
from blobstore.records import PartInfo
from blobstore.records import RefRecord
from blobstore.records import S3PartRecord
from blobstore.records import S3UploadRecord
from blobstore.records import UploadRecord

__all__ = ["SQLiteCatalog"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    hash TEXT PRIMARY KEY,
    name TEXT,
    size INTEGER NOT NULL,
    put_time INTEGER NOT NULL,
    part_index TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blobs_put_time ON blobs (put_time);
CREATE INDEX IF NOT EXISTS blobs_name ON blobs (name) WHERE name IS NOT NULL;
CREATE INDEX IF NOT EXISTS blobs_composite ON blobs (hash) WHERE part_index IS NOT NULL;

CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    expires INTEGER NOT NULL,
    hash TEXT,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS uploads_expires ON uploads (expires);
CREATE TABLE IF NOT EXISTS upload_parts (
    upload_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    complete INTEGER NOT NULL,
    PRIMARY KEY (upload_id, n)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS refs (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    mtime INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created INTEGER NOT NULL,
    region TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    key BLOB NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    mtime INTEGER NOT NULL,
    hash TEXT,
    part_index TEXT,
    content_type TEXT NOT NULL,
    headers TEXT NOT NULL,
    metadata TEXT NOT NULL,
    upload_id TEXT,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS s3_uploads (
    id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key BLOB NOT NULL,
    initiated INTEGER NOT NULL,
    owner TEXT NOT NULL,
    content_type TEXT NOT NULL,
    headers TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS s3_uploads_listing
    ON s3_uploads (bucket, key, initiated, id);
CREATE TABLE IF NOT EXISTS s3_parts (
    upload_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    mtime INTEGER NOT NULL,
    PRIMARY KEY (upload_id, number)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Running totals of the blobs table, kept by triggers in the same
-- transaction as each insert or delete, so stats never scan the table.
CREATE TABLE IF NOT EXISTS blob_totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    blobs INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    composites INTEGER NOT NULL
);
INSERT OR IGNORE INTO blob_totals
    SELECT 1,
        (SELECT count(*) FROM blobs WHERE name IS NOT NULL),
        (SELECT coalesce(sum(size), 0) FROM blobs WHERE name IS NOT NULL),
        (SELECT count(*) FROM blobs WHERE part_index IS NOT NULL);
CREATE TRIGGER IF NOT EXISTS blobs_count_insert AFTER INSERT ON blobs BEGIN
    UPDATE blob_totals SET
        blobs = blobs + (NEW.name IS NOT NULL),
        bytes = bytes + CASE WHEN NEW.name IS NOT NULL THEN NEW.size ELSE 0 END,
        composites = composites + (NEW.part_index IS NOT NULL)
    WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS blobs_count_delete AFTER DELETE ON blobs BEGIN
    UPDATE blob_totals SET
        blobs = blobs - (OLD.name IS NOT NULL),
        bytes = bytes - CASE WHEN OLD.name IS NOT NULL THEN OLD.size ELSE 0 END,
        composites = composites - (OLD.part_index IS NOT NULL)
    WHERE id = 1;
END;
"""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _ms(t: datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return (t - _EPOCH) // _MS


def _dt(ms: int) -> datetime:
    return _EPOCH + ms * _MS


def _index_json(index: MultipartIndex | None) -> str | None:
    return None if index is None else json.dumps(index.to_dict())


def _index(text: str | None) -> MultipartIndex | None:
    if text is None:
        return None
    d = json.loads(text)
    return MultipartIndex(tuple(d["hashes"]), tuple(d["sizes"]))


# What "the database is busy or unreachable" looks like from sqlite3: the
# lock wait ran out, the disk failed, the file vanished or became read-only.
_TRANSIENT_MESSAGES = ("locked", "busy", "disk i/o error", "unable to open", "readonly")
# SQLITE_FULL: the file system (or a quota) has no room for the write.
_FULL_MESSAGE = "is full"


def _known(exc: BaseException) -> bool:
    """A driver error that is the database's state, not a bug here."""
    return isinstance(exc, sqlite3.OperationalError) and any(
        m in str(exc).lower() for m in (*_TRANSIENT_MESSAGES, _FULL_MESSAGE)
    )


@guard_public_methods(_known)
class SQLiteCatalog(Catalog):
    """Catalog in one SQLite file. ``path`` may be ``":memory:"`` for tests
    (one shared in-process database)."""

    type_name = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str] = "blobstore.db",
        *,
        busy_timeout: float = 60.0,
    ) -> None:
        """:param busy_timeout: seconds a write waits for another writer's lock
        before the catalog reports itself :class:`Unavailable`."""
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self._memory = self.path == ":memory:"
        if self._memory:
            # A named shared-cache database, so every thread sees the same data.
            self._uri = f"file:blobstore-{uuid.uuid4().hex}?mode=memory&cache=shared"
        else:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._uri = Path(self.path).absolute().as_uri()
        self._local = threading.local()
        # Every connection opened, with the pid that opened it, so close()
        # can close them all (each thread has its own; gunicorn's threads
        # outlive requests) -- but only its own process's: closing a
        # connection inherited through fork could checkpoint or delete the
        # WAL under the parent.
        self._opened: list[tuple[int, sqlite3.Connection]] = []
        self._opened_lock = threading.Lock()
        self._keepalive = self._connect()  # also keeps a :memory: db alive
        self._opened.append((os.getpid(), self._keepalive))
        self._keepalive.executescript(_SCHEMA)

    # -- connections ---------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(
                self._uri,
                uri=True,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if not self._memory:
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            raise Unavailable(f"cannot open catalog {self.path}: {exc}") from exc
        return db

    @property
    def _db(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            # First use in this thread, or we are a freshly forked worker:
            # never share a connection across processes.
            local.db = self._connect()
            local.pid = os.getpid()
            with self._opened_lock:
                self._opened.append((local.pid, local.db))
        return local.db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: takes the write lock up front, so the
        reads inside it see what the writes will be checked against."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self._db.execute(sql, args).fetchone()

    def _changes(self, sql: str, args: Sequence[Any] = ()) -> int:
        return self._db.execute(sql, args).rowcount

    def _driver_error(self, exc: BaseException) -> BlobStoreError:
        if _FULL_MESSAGE in str(exc).lower():
            # The write was rolled back: nothing recorded, nothing corrupt.
            return InsufficientStorage(f"SQLite catalog {self.path}: {exc}")
        return Unavailable(f"SQLite catalog {self.path} unavailable: {exc}")

    def check(self) -> None:
        try:
            self._one("SELECT 1")
        except sqlite3.Error as exc:
            raise self._driver_error(exc) from exc

    def close(self) -> None:
        """Close every connection this process opened (any thread's)."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for pid, db in opened:
            if pid == os.getpid():
                db.close()
        self._local = threading.local()

    # -- blobs -------------------------------------------------------------

    @staticmethod
    def _blob(row: tuple) -> BlobRecord:
        h, name, size, put_time, part_index = row
        return BlobRecord(h, size, _dt(put_time), name, _index(part_index))

    _BLOB_COLS = "hash, name, size, put_time, part_index"

    def get_blob(self, hash: str) -> BlobRecord | None:
        row = self._one(f"SELECT {self._BLOB_COLS} FROM blobs WHERE hash = ?", (hash,))
        return None if row is None else self._blob(row)

    def insert_blob(self, record: BlobRecord) -> bool:
        return (
            self._changes(
                "INSERT OR IGNORE INTO blobs (hash, name, size, put_time, part_index) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    record.hash,
                    record.name,
                    record.size,
                    _ms(record.put_time),
                    _index_json(record.index),
                ),
            )
            == 1
        )

    def touch_blob(self, hash: str, now: datetime) -> bool:
        return (
            self._changes(
                "UPDATE blobs SET put_time = max(put_time, ?) WHERE hash = ?",
                (_ms(now), hash),
            )
            == 1
        )

    def delete_blob_if(self, hash: str, name: str | None, put_before: datetime) -> bool:
        return (
            self._changes(
                "DELETE FROM blobs WHERE hash = ? AND name IS ? AND put_time <= ?",
                (hash, name, _ms(put_before)),
            )
            == 1
        )

    def _iter_batched(self, where: str, args: Sequence[Any]) -> Iterator[BlobRecord]:
        # Keyset pagination: no read transaction stays open between batches.
        last = ""
        while True:
            rows = self._db.execute(
                f"SELECT {self._BLOB_COLS} FROM blobs WHERE hash > ? {where} "
                "ORDER BY hash LIMIT ?",
                (last, *args, self.batch_size),
            ).fetchall()
            for row in rows:
                yield self._blob(row)
            if len(rows) < self.batch_size:
                return
            last = rows[-1][0]

    def iter_blobs(self, put_before: datetime | None = None) -> Iterator[BlobRecord]:
        if put_before is None:
            return self._iter_batched("", ())
        return self._iter_batched("AND put_time <= ?", (_ms(put_before),))

    def iter_composites(self) -> Iterator[BlobRecord]:
        return self._iter_batched("AND part_index IS NOT NULL", ())

    def known_names(self, names: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(names), 500):
            chunk = list(names[i : i + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT name FROM blobs WHERE name IN ({marks})", chunk
            ).fetchall()
            found.update(r[0] for r in rows)
        return found

    def blob_totals(self) -> BlobTotals:
        return BlobTotals(
            *self._one("SELECT blobs, bytes, composites FROM blob_totals WHERE id = 1")
        )

    # -- native multipart uploads -------------------------------------------

    def insert_upload(self, record: UploadRecord) -> None:
        try:
            self._db.execute(
                "INSERT INTO uploads (id, expires, hash, owner) VALUES (?, ?, ?, ?)",
                (record.id, _ms(record.expires), record.hash, record.owner),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"upload id {record.id!r} already exists") from None

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        db = self._db
        db.execute("BEGIN")  # one snapshot for the upload and its parts
        try:
            row = db.execute(
                "SELECT id, expires, hash, owner FROM uploads WHERE id = ?",
                (upload_id,),
            ).fetchone()
            parts = db.execute(
                "SELECT n, hash, size, offset, complete FROM upload_parts "
                "WHERE upload_id = ? ORDER BY n",
                (upload_id,),
            ).fetchall()
        finally:
            db.execute("COMMIT")
        if row is None:
            return None
        return self._upload(row, parts)

    @staticmethod
    def _upload(row: tuple, parts: list[tuple]) -> UploadRecord:
        slots: list[PartInfo | None] = [None] * (parts[-1][0] + 1 if parts else 0)
        for n, h, size, offset, complete in parts:
            slots[n] = PartInfo(h, size, offset, bool(complete))
        uid, expires, h, owner = row
        return UploadRecord(uid, _dt(expires), tuple(slots), h, owner)

    def init_part(self, upload_id: str, part: int, info: PartInfo) -> bool:
        return (
            self._changes(
                "INSERT OR IGNORE INTO upload_parts "
                "(upload_id, n, hash, size, offset, complete) "
                "SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS "
                "(SELECT 1 FROM uploads WHERE id = ? AND hash IS NULL)",
                (
                    upload_id,
                    part,
                    info.hash,
                    info.size,
                    info.offset,
                    int(info.complete),
                    upload_id,
                ),
            )
            == 1
        )

    def complete_part(self, upload_id: str, part: int, info: PartInfo) -> bool:
        return (
            self._changes(
                "UPDATE upload_parts SET hash = ?, size = ?, offset = ?, complete = ? "
                "WHERE upload_id = ? AND n = ?",
                (
                    info.hash,
                    info.size,
                    info.offset,
                    int(info.complete),
                    upload_id,
                    part,
                ),
            )
            == 1
        )

    def set_upload_hash(self, upload_id: str, hash: str) -> bool:
        return (
            self._changes("UPDATE uploads SET hash = ? WHERE id = ?", (hash, upload_id))
            == 1
        )

    def set_upload_owner(self, upload_id: str, owner: str, expires: datetime) -> bool:
        return (
            self._changes(
                "UPDATE uploads SET owner = ?, expires = ? WHERE id = ? "
                "AND hash IS NOT NULL AND (owner IS NULL OR owner = ?)",
                (owner, _ms(expires), upload_id, owner),
            )
            == 1
        )

    def delete_upload(self, upload_id: str, *, only_unowned: bool) -> bool:
        cond = " AND owner IS NULL" if only_unowned else ""
        with self._write() as db:
            gone = db.execute(f"DELETE FROM uploads WHERE id = ?{cond}", (upload_id,))
            if gone.rowcount != 1:
                return False
            db.execute("DELETE FROM upload_parts WHERE upload_id = ?", (upload_id,))
        return True

    def iter_uploads(
        self, expired_before: datetime | None = None
    ) -> Iterator[UploadRecord]:
        where, args = (
            ("WHERE expires < ?", (_ms(expired_before),))
            if expired_before
            else ("", ())
        )
        ids = [r[0] for r in self._db.execute(f"SELECT id FROM uploads {where}", args)]
        for uid in ids:
            rec = self.get_upload(uid)
            if rec is not None:
                yield rec

    # -- named refs ----------------------------------------------------------

    def put_ref(self, name: str, hash: str, now: datetime) -> bool:
        with self._write() as db:
            existed = db.execute(
                "SELECT 1 FROM refs WHERE name = ?", (name,)
            ).fetchone()
            db.execute(
                "INSERT INTO refs (name, hash, mtime) VALUES (?, ?, ?) "
                "ON CONFLICT (name) "
                "DO UPDATE SET hash = excluded.hash, mtime = excluded.mtime",
                (name, hash, _ms(now)),
            )
        return existed is None

    def get_ref(self, name: str) -> RefRecord | None:
        row = self._one("SELECT name, hash, mtime FROM refs WHERE name = ?", (name,))
        return None if row is None else RefRecord(row[0], row[1], _dt(row[2]))

    def delete_ref(self, name: str) -> bool:
        return self._changes("DELETE FROM refs WHERE name = ?", (name,)) == 1

    def list_refs(
        self, prefix: str = "", after: str = "", limit: int = 1000
    ) -> list[RefRecord]:
        if limit <= 0:
            return []  # SQLite reads a negative LIMIT as "no limit"
        # A range on the primary key (TEXT compares as UTF-8 bytes), so a
        # prefix listing does not scan the names after the prefix.
        sql = "SELECT name, hash, mtime FROM refs WHERE name > ? AND name >= ?"
        args: list[Any] = [after, prefix]
        upper = prefix_upper_bound(prefix)
        if upper is not None:
            sql += " AND name < ?"
            args.append(upper)
        rows = self._db.execute(f"{sql} ORDER BY name LIMIT ?", (*args, limit))
        return [RefRecord(n, h, _dt(m)) for n, h, m in rows.fetchall()]

    def iter_refs(self) -> Iterator[RefRecord]:
        after = ""
        while batch := self.list_refs(after=after, limit=self.batch_size):
            yield from batch
            after = batch[-1].name

    # -- S3 buckets and objects ------------------------------------------------

    def create_bucket(self, record: BucketRecord) -> bool:
        return (
            self._changes(
                "INSERT OR IGNORE INTO buckets (name, owner, created, region) "
                "VALUES (?, ?, ?, ?)",
                (record.name, record.owner, _ms(record.created), record.region),
            )
            == 1
        )

    def get_bucket(self, name: str) -> BucketRecord | None:
        row = self._one(
            "SELECT name, owner, created, region FROM buckets WHERE name = ?", (name,)
        )
        return (
            None if row is None else BucketRecord(row[0], row[1], _dt(row[2]), row[3])
        )

    def delete_bucket(self, name: str) -> bool:
        with self._write() as db:
            if db.execute(
                "SELECT 1 FROM objects WHERE bucket = ? LIMIT 1", (name,)
            ).fetchone():
                raise Conflict(f"bucket {name!r} is not empty")
            if db.execute("DELETE FROM buckets WHERE name = ?", (name,)).rowcount != 1:
                return False
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM s3_uploads WHERE bucket = ?", (name,)
                )
            ]
            for uid in ids:
                db.execute("DELETE FROM s3_parts WHERE upload_id = ?", (uid,))
            db.execute("DELETE FROM s3_uploads WHERE bucket = ?", (name,))
        return True

    def list_buckets(self, owner: str | None = None) -> list[BucketRecord]:
        where, args = ("WHERE owner = ?", (owner,)) if owner is not None else ("", ())
        rows = self._db.execute(
            f"SELECT name, owner, created, region FROM buckets {where} ORDER BY name",
            args,
        ).fetchall()
        return [BucketRecord(n, o, _dt(c), r) for n, o, c, r in rows]

    _OBJ_COLS = (
        "bucket, key, size, etag, mtime, hash, part_index, content_type, "
        "headers, metadata, upload_id"
    )

    @staticmethod
    def _object(row: tuple) -> ObjectRecord:
        bucket, key, size, etag, mtime, h, idx, ctype, headers, meta, upload_id = row
        return ObjectRecord(
            bucket,
            bytes(key).decode(),
            size,
            etag,
            _dt(mtime),
            h,
            _index(idx),
            ctype,
            json.loads(headers),
            json.loads(meta),
            upload_id,
        )

    @staticmethod
    def _object_args(r: ObjectRecord) -> tuple:
        return (
            r.bucket,
            r.key.encode(),
            r.size,
            r.etag,
            _ms(r.mtime),
            r.hash,
            _index_json(r.index),
            r.content_type,
            json.dumps(r.headers),
            json.dumps(r.metadata),
            r.upload_id,
        )

    _PUT_OBJECT = (
        f"INSERT OR REPLACE INTO objects ({_OBJ_COLS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def put_object(self, record: ObjectRecord) -> None:
        self._db.execute(self._PUT_OBJECT, self._object_args(record))

    def get_object(self, bucket: str, key: str) -> ObjectRecord | None:
        row = self._one(
            f"SELECT {self._OBJ_COLS} FROM objects WHERE bucket = ? AND key = ?",
            (bucket, key.encode()),
        )
        return None if row is None else self._object(row)

    def delete_object(self, bucket: str, key: str) -> bool:
        return (
            self._changes(
                "DELETE FROM objects WHERE bucket = ? AND key = ?",
                (bucket, key.encode()),
            )
            == 1
        )

    _DELETE_OBJECT_IF = (
        "DELETE FROM objects WHERE bucket = ? AND key = ? AND size = ? "
        "AND etag = ? AND mtime = ? AND hash IS ? AND part_index IS ? "
        "AND content_type = ? AND headers = ? AND metadata = ? AND upload_id IS ?"
    )

    def delete_object_if(self, record: ObjectRecord) -> bool:
        args = self._object_args(record)
        return self._changes(self._DELETE_OBJECT_IF, args) == 1

    def list_objects(
        self, bucket: str, prefix: str = "", start_after: str = "", limit: int = 1000
    ) -> list[ObjectRecord]:
        if limit <= 0:
            return []
        low = max(prefix.encode(), start_after.encode())
        op = ">" if start_after and start_after.encode() >= prefix.encode() else ">="
        sql = f"SELECT {self._OBJ_COLS} FROM objects WHERE bucket = ? AND key {op} ?"
        args: list[Any] = [bucket, low]
        upper = prefix_upper_bound(prefix)
        if upper is not None:  # keys are stored as UTF-8 bytes: same order
            sql += " AND key < ?"
            args.append(upper.encode())
        sql += " ORDER BY key LIMIT ?"
        args.append(limit)
        return [self._object(r) for r in self._db.execute(sql, args).fetchall()]

    def iter_objects(self) -> Iterator[ObjectRecord]:
        # Every object, whether or not its bucket record still exists: the
        # GC must keep whatever any object points at.
        sql = f"SELECT {self._OBJ_COLS} FROM objects"
        order = " ORDER BY bucket, key LIMIT ?"
        rows = self._db.execute(sql + order, (self.batch_size,)).fetchall()
        while rows:
            yield from (self._object(r) for r in rows)
            if len(rows) < self.batch_size:
                return
            last_bucket, last_key = rows[-1][0], rows[-1][1]
            rows = self._db.execute(
                f"{sql} WHERE (bucket, key) > (?, ?){order}",
                (last_bucket, last_key, self.batch_size),
            ).fetchall()

    # -- S3 multipart uploads -------------------------------------------------

    _S3U_COLS = "id, bucket, key, initiated, owner, content_type, headers, metadata"

    @staticmethod
    def _s3_upload(row: tuple) -> S3UploadRecord:
        uid, bucket, key, initiated, owner, ctype, headers, meta = row
        return S3UploadRecord(
            uid,
            bucket,
            bytes(key).decode(),
            _dt(initiated),
            owner,
            ctype,
            json.loads(headers),
            json.loads(meta),
        )

    def create_s3_upload(self, record: S3UploadRecord) -> None:
        try:
            self._insert_s3_upload(record)
        except sqlite3.IntegrityError:
            raise Conflict(f"upload id {record.id!r} already exists") from None

    def _insert_s3_upload(self, record: S3UploadRecord) -> None:
        self._db.execute(
            f"INSERT INTO s3_uploads ({self._S3U_COLS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.bucket,
                record.key.encode(),
                _ms(record.initiated),
                record.owner,
                record.content_type,
                json.dumps(record.headers),
                json.dumps(record.metadata),
            ),
        )

    def get_s3_upload(self, upload_id: str) -> S3UploadRecord | None:
        row = self._one(
            f"SELECT {self._S3U_COLS} FROM s3_uploads WHERE id = ?", (upload_id,)
        )
        return None if row is None else self._s3_upload(row)

    def put_s3_part(self, part: S3PartRecord) -> bool:
        return (
            self._changes(
                "INSERT OR REPLACE INTO s3_parts "
                "(upload_id, number, hash, size, md5, mtime) "
                "SELECT ?, ?, ?, ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM s3_uploads WHERE id = ?)",
                (
                    part.upload_id,
                    part.number,
                    part.hash,
                    part.size,
                    part.md5,
                    _ms(part.mtime),
                    part.upload_id,
                ),
            )
            == 1
        )

    def list_s3_parts(
        self, upload_id: str, after: int = 0, limit: int = 10000
    ) -> list[S3PartRecord]:
        if limit <= 0:
            return []
        rows = self._db.execute(
            "SELECT upload_id, number, hash, size, md5, mtime FROM s3_parts "
            "WHERE upload_id = ? AND number > ? ORDER BY number LIMIT ?",
            (upload_id, after, limit),
        ).fetchall()
        return [S3PartRecord(u, n, h, s, m, _dt(t)) for u, n, h, s, m, t in rows]

    def list_s3_uploads(
        self,
        bucket: str,
        prefix: str = "",
        key_marker: str = "",
        upload_id_marker: str = "",
        limit: int = 1000,
    ) -> list[S3UploadRecord]:
        if limit <= 0:
            return []
        sql = f"SELECT {self._S3U_COLS} FROM s3_uploads WHERE bucket = ?"
        args: list[Any] = [bucket]
        if prefix:
            sql += " AND key >= ?"
            args.append(prefix.encode())
            upper = prefix_upper_bound(prefix)
            if upper is not None:
                sql += " AND key < ?"
                args.append(upper.encode())
        if key_marker:
            km = key_marker.encode()
            marker = None
            if upload_id_marker:
                marker = self._one(
                    "SELECT initiated FROM s3_uploads "
                    "WHERE id = ? AND bucket = ? AND key = ?",
                    (upload_id_marker, bucket, km),
                )
            if marker is not None:
                # Strictly after the marker in the listing's own order.
                sql += " AND (key, initiated, id) > (?, ?, ?)"
                args += [km, marker[0], upload_id_marker]
            elif upload_id_marker:
                # The marker upload is gone: list the key's uploads again
                # rather than risk skipping some.
                sql += " AND key >= ?"
                args.append(km)
            else:
                sql += " AND key > ?"
                args.append(km)
        sql += " ORDER BY key, initiated, id LIMIT ?"
        args.append(limit)
        return [self._s3_upload(r) for r in self._db.execute(sql, args).fetchall()]

    def complete_s3_upload(self, upload_id: str, record: ObjectRecord) -> bool:
        with self._write() as db:
            if (
                db.execute("DELETE FROM s3_uploads WHERE id = ?", (upload_id,)).rowcount
                != 1
            ):
                return False
            db.execute("DELETE FROM s3_parts WHERE upload_id = ?", (upload_id,))
            db.execute(self._PUT_OBJECT, self._object_args(record))
        return True

    def delete_s3_upload(self, upload_id: str) -> bool:
        with self._write() as db:
            if (
                db.execute("DELETE FROM s3_uploads WHERE id = ?", (upload_id,)).rowcount
                != 1
            ):
                return False
            db.execute("DELETE FROM s3_parts WHERE upload_id = ?", (upload_id,))
        return True

    def iter_s3_uploads(
        self, initiated_before: datetime | None = None
    ) -> Iterator[tuple[S3UploadRecord, list[S3PartRecord]]]:
        where, args = (
            ("WHERE initiated < ?", (_ms(initiated_before),))
            if initiated_before
            else ("", ())
        )
        rows = self._db.execute(
            f"SELECT {self._S3U_COLS} FROM s3_uploads {where}", args
        ).fetchall()
        for row in rows:
            rec = self._s3_upload(row)
            yield rec, self.list_s3_parts(rec.id)

    # -- leases and job state -------------------------------------------------

    def acquire_lease(
        self, name: str, holder: str, ttl: timedelta, now: datetime
    ) -> bool:
        return (
            self._changes(
                "INSERT INTO leases (name, holder, expires) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                "expires = excluded.expires "
                "WHERE leases.expires <= ? OR leases.holder = ?",
                (name, holder, _ms(now + ttl), _ms(now), holder),
            )
            == 1
        )

    def release_lease(self, name: str, holder: str) -> None:
        self._db.execute(
            "DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder)
        )

    def put_state(self, key: str, value: Mapping[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)",
            (key, json.dumps(dict(value), default=str)),
        )

    def get_state(self, key: str) -> dict[str, Any] | None:
        row = self._one("SELECT value FROM state WHERE key = ?", (key,))
        return None if row is None else json.loads(row[0])
