"""MongoCatalog: the catalog in MongoDB, for many stateless API nodes.

The collections are the reference's (charmstore's blobstore), named
``<prefix>.<kind>``:

``blobref``
    ``{_id: hash, name, puttime, size}`` per blob, as in the reference;
    a composite blob (a finished multipart upload) has no ``name`` but an
    ``index: {hashes: <binary: the 48-byte digests concatenated>, sizes}``.
``upload``
    ``{_id, expires, parts: [...], hash?, owner?}`` per native upload: ``hash``
    is absent until finished and ``owner`` until claimed, and ``parts`` is an
    array indexed by part number with nulls for gaps. It is inserted as an
    explicit empty array: ``$set`` on ``parts.N`` pads an array with nulls but
    would make a sub-document of a missing field.
``ref``, ``bucket``, ``object``, ``s3upload``, ``s3part``, ``lease``, ``state``
    named refs, S3 buckets, objects and multipart uploads, the GC lease and
    small job-state documents.

Every conditional update is one single-document operation (a standalone
``mongod`` has no multi-document transactions). Where the SQLite catalog uses
a transaction, the documents or the order of writes are chosen so that each
step leaves a consistent state: native upload parts are embedded in their
upload; S3 parts (up to 10000, re-uploaded often) live in their own
collection, and completing an S3 upload first *claims* the upload, then
writes the object, then deletes the upload, so a concurrent GC always finds
the parts referenced by one or the other.

S3 keys and ref names are stored as strings: MongoDB's default (``simple``)
collation compares strings as UTF-8 bytes, which is S3's listing order, and
a prefix listing is a range on the ``(bucket, key)`` index. (BSON binary
would not do: MongoDB orders binary values by length first.) Creating these
collections with a locale-aware default collation is not supported.

Connection failures surface as :class:`~blobstore.errors.Unavailable`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pymongo
from bson.binary import Binary
from bson.int64 import Int64
from pymongo.errors import ConfigurationError
from pymongo.errors import ConnectionFailure
from pymongo.errors import DuplicateKeyError
from pymongo.errors import ExecutionTimeout
from pymongo.errors import WTimeoutError

from blobstore.catalog.base import Catalog
from blobstore.catalog.guard import guard_public_methods
from blobstore.clock import to_millis
from blobstore.clock import utcnow
from blobstore.errors import BadParams
from blobstore.errors import Conflict
from blobstore.errors import Corrupt
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

__all__ = ["MongoCatalog"]

_ASC = pymongo.ASCENDING
_DIGEST_SIZE = 48  # bytes in a SHA-384 digest
# Upload documents embed up to MaxParts part records: page them in smaller
# batches than blob records.
_MAX_UPLOAD_BATCH = 500
# How long a completion's claim on an S3 upload stands before another
# completion may take over (the first one presumably crashed).
_COMPLETE_CLAIM = timedelta(minutes=10)
# ConnectionFailure covers AutoReconnect, NetworkTimeout, NotPrimaryError
# and ServerSelectionTimeoutError: the same request may succeed later.
_TRANSIENT = (ConnectionFailure, ExecutionTimeout, WTimeoutError)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSIENT)


# -- conversions -------------------------------------------------------------


def _time(t: datetime) -> datetime:
    """What we store: UTC, whole milliseconds (BSON dates hold no more)."""
    return to_millis(t)


def _dt(value: datetime) -> datetime:
    """A stored date as an aware UTC datetime, whatever the client's
    ``tz_aware`` setting."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _index_doc(index: MultipartIndex) -> dict[str, Any]:
    # The reference's compact form: the raw digests concatenated.
    try:
        packed = b"".join(bytes.fromhex(h) for h in index.hashes)
    except ValueError:
        raise BadParams("implausible hash in multipart index") from None
    if len(packed) != _DIGEST_SIZE * len(index):
        raise BadParams("implausible hash in multipart index")
    return {"hashes": Binary(packed), "sizes": [Int64(s) for s in index.sizes]}


def _index(doc: Mapping[str, Any] | None) -> MultipartIndex | None:
    if doc is None:
        return None
    packed = bytes(doc["hashes"])
    if len(packed) % _DIGEST_SIZE:
        raise Corrupt(
            f"multipart index hashes are {len(packed)} bytes, not a multiple "
            f"of {_DIGEST_SIZE} (database corruption?)"
        )
    hashes = tuple(
        packed[i : i + _DIGEST_SIZE].hex() for i in range(0, len(packed), _DIGEST_SIZE)
    )
    return MultipartIndex(hashes, tuple(int(s) for s in doc["sizes"]))


def _pairs(mapping: Mapping[str, str]) -> list[list[str]]:
    # Header and metadata names are user input: stored as pairs rather than
    # field names, so dots and dollars in them need no special handling.
    return [[k, v] for k, v in mapping.items()]


def _mapping(pairs: Sequence[Sequence[str]]) -> dict[str, str]:
    return {k: v for k, v in pairs}


def _key_range(prefix: str, after: str) -> dict[str, str]:
    """Range conditions for keys starting with *prefix*, strictly after *after*."""
    cond: dict[str, str] = {}
    if after and after >= prefix:
        cond["$gt"] = after
    elif prefix:
        cond["$gte"] = prefix
    upper = prefix_upper_bound(prefix)
    if upper is not None:
        cond["$lt"] = upper
    return cond


# -- the catalog -----------------------------------------------------------


@guard_public_methods(_transient)
class MongoCatalog(Catalog):
    """Catalog in MongoDB database *database*, collections ``<prefix>.*``.

    :param uri: a MongoDB connection string (replica set, options and all).
    :param client: an existing client (e.g. ``mongomock``) to use instead of
        connecting to *uri*; the caller keeps ownership (``close`` leaves it
        open).
    :param create_indexes: create the indexes now (idempotent; needs the
        ``createIndex`` privilege).
    :param client_options: passed to :class:`pymongo.MongoClient`.
    :raises BadParams: a malformed *uri* or option.
    :raises Unavailable: MongoDB cannot be reached to create the indexes.
    """

    type_name = "mongodb"

    def __init__(
        self,
        uri: str = "mongodb://localhost:27017",
        database: str = "blobstore",
        prefix: str = "blobstore",
        client: Any = None,
        *,
        create_indexes: bool = True,
        **client_options: Any,
    ) -> None:
        if not database or not prefix:
            raise BadParams("catalog database and prefix must not be empty")
        self.database = database
        self.prefix = prefix
        self._uri = uri
        self._client_options = client_options
        self._owns_client = client is None
        self._client = client if client is not None else self._connect()
        self._pid = os.getpid()
        if create_indexes:
            try:
                self._create_indexes()
            except BaseException as exc:
                self.close()  # do not leak the connection pool of a failed start
                if isinstance(exc, _TRANSIENT):
                    raise self._driver_error(exc) from exc
                raise

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MongoCatalog:
        """Build from a ``[catalog]`` table: ``uri``, ``database``, ``prefix``."""
        allowed = {"type", "uri", "database", "prefix"}
        unknown = sorted(set(config) - allowed)
        if unknown:
            raise BadParams(
                f"unknown mongodb catalog setting(s) {', '.join(unknown)} "
                f"(allowed: uri, database, prefix)"
            )
        for key in allowed - {"type"}:
            if key in config and not isinstance(config[key], str):
                raise BadParams(f"catalog.{key} must be a string")
        return cls(**{k: v for k, v in config.items() if k != "type"})

    # -- connections ---------------------------------------------------------

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def client(self) -> Any:
        """This process's MongoClient, for a GridFS backend to share."""
        self._db  # noqa: B018 - reconnects first if we were forked
        return self._client

    def _connect(self) -> Any:
        try:
            # tz_aware: dates come back as aware UTC datetimes.
            return pymongo.MongoClient(self._uri, tz_aware=True, **self._client_options)
        except ConfigurationError as exc:
            raise BadParams(f"invalid MongoDB catalog uri or option: {exc}") from None

    @property
    def _db(self) -> Any:
        if self._owns_client and self._pid != os.getpid():
            # A MongoClient must not be used across fork (gunicorn workers
            # forked from a master that built the catalog): reconnect.
            self._client = self._connect()
            self._pid = os.getpid()
        return self._client[self.database]

    def _coll(self, kind: str) -> Any:
        return self._db[f"{self.prefix}.{kind}"]

    def _driver_error(self, exc: Exception) -> Unavailable:
        return Unavailable(
            f"MongoDB catalog (database {self.database!r}) unavailable: {exc}"
        )

    def _create_indexes(self) -> None:
        blobs = self._coll("blobref")
        # GC selects blobs by put time (the reference scanned for it).
        blobs.create_index([("puttime", _ASC)])
        # Orphan sweeps look blobs up by backend name; composites (no name)
        # are the null entries, listed in hash order.
        blobs.create_index([("name", _ASC), ("_id", _ASC)])
        self._coll("upload").create_index([("expires", _ASC)])
        self._coll("bucket").create_index([("owner", _ASC), ("_id", _ASC)])
        self._coll("object").create_index(
            [("bucket", _ASC), ("key", _ASC)], unique=True
        )
        s3uploads = self._coll("s3upload")
        s3uploads.create_index(
            [("bucket", _ASC), ("key", _ASC), ("initiated", _ASC), ("_id", _ASC)],
        )
        s3uploads.create_index([("initiated", _ASC)])
        self._coll("s3part").create_index(
            [("upload_id", _ASC), ("number", _ASC)], unique=True
        )

    def check(self) -> None:
        self._db.command("ping")

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # -- blobs -------------------------------------------------------------

    @staticmethod
    def _blob(doc: Mapping[str, Any]) -> BlobRecord:
        return BlobRecord(
            doc["_id"],
            int(doc["size"]),
            _dt(doc["puttime"]),
            doc.get("name"),
            _index(doc.get("index")),
        )

    def get_blob(self, hash: str) -> BlobRecord | None:
        doc = self._coll("blobref").find_one({"_id": hash})
        return None if doc is None else self._blob(doc)

    def insert_blob(self, record: BlobRecord) -> bool:
        doc: dict[str, Any] = {
            "_id": record.hash,
            "puttime": _time(record.put_time),
            "size": Int64(record.size),
        }
        if record.name is not None:
            doc["name"] = record.name
        if record.index is not None:
            doc["index"] = _index_doc(record.index)
        try:
            self._coll("blobref").insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    def touch_blob(self, hash: str, now: datetime) -> bool:
        # $max: a touch never moves the put time backwards.
        result = self._coll("blobref").update_one(
            {"_id": hash}, {"$max": {"puttime": _time(now)}}
        )
        return result.matched_count == 1

    def delete_blob_if(self, hash: str, name: str | None, put_before: datetime) -> bool:
        # name None matches a composite (no name field) and nothing else.
        result = self._coll("blobref").delete_one(
            {"_id": hash, "name": name, "puttime": {"$lte": _time(put_before)}}
        )
        return result.deleted_count == 1

    def _page_blobs(self, query: Mapping[str, Any]) -> Iterator[BlobRecord]:
        # Keyset pagination on _id: a fresh query per batch, so no server
        # cursor idles (and times out) while the GC works through a batch.
        blobs = self._coll("blobref")
        last: str | None = None
        while True:
            q = dict(query)
            if last is not None:
                q["_id"] = {"$gt": last}
            docs = list(blobs.find(q).sort("_id", _ASC).limit(self.batch_size))
            for doc in docs:
                yield self._blob(doc)
            if len(docs) < self.batch_size:
                return
            last = docs[-1]["_id"]

    def iter_blobs(self, put_before: datetime | None = None) -> Iterator[BlobRecord]:
        query = {} if put_before is None else {"puttime": {"$lte": _time(put_before)}}
        yield from self._page_blobs(query)

    def iter_composites(self) -> Iterator[BlobRecord]:
        yield from self._page_blobs({"name": None, "index": {"$exists": True}})

    def known_names(self, names: Sequence[str]) -> set[str]:
        blobs = self._coll("blobref")
        found: set[str] = set()
        for i in range(0, len(names), 1000):
            chunk = list(names[i : i + 1000])
            for doc in blobs.find({"name": {"$in": chunk}}, {"name": 1, "_id": 0}):
                found.add(doc["name"])
        return found

    def blob_totals(self) -> BlobTotals:
        blobs = self._coll("blobref")
        rows = list(
            blobs.aggregate(
                [
                    {"$match": {"name": {"$exists": True}}},
                    {"$group": {"_id": None, "n": {"$sum": 1}, "b": {"$sum": "$size"}}},
                ]
            )
        )
        count, size = (int(rows[0]["n"]), int(rows[0]["b"])) if rows else (0, 0)
        composites = blobs.count_documents({"index": {"$exists": True}})
        return BlobTotals(count, size, composites)

    # -- native multipart uploads -------------------------------------------

    @staticmethod
    def _part_doc(info: PartInfo) -> dict[str, Any]:
        return {
            "hash": info.hash,
            "size": Int64(info.size),
            "offset": Int64(info.offset),
            "complete": info.complete,
        }

    @staticmethod
    def _upload(doc: Mapping[str, Any]) -> UploadRecord:
        parts = doc.get("parts", [])
        if not isinstance(parts, list):
            raise Corrupt(f"upload {doc['_id']!r}: parts is not an array")
        return UploadRecord(
            doc["_id"],
            _dt(doc["expires"]),
            tuple(
                None
                if p is None
                else PartInfo(
                    p["hash"], int(p["size"]), int(p["offset"]), p["complete"]
                )
                for p in parts
            ),
            doc.get("hash"),
            doc.get("owner"),
        )

    def insert_upload(self, record: UploadRecord) -> None:
        doc: dict[str, Any] = {
            "_id": record.id,
            "expires": _time(record.expires),
            # Explicitly an array (see the module docstring).
            "parts": [None if p is None else self._part_doc(p) for p in record.parts],
        }
        if record.hash is not None:
            doc["hash"] = record.hash
        if record.owner is not None:
            doc["owner"] = record.owner
        try:
            self._coll("upload").insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(f"upload id {record.id!r} already exists") from None

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        doc = self._coll("upload").find_one({"_id": upload_id})
        return None if doc is None else self._upload(doc)

    def init_part(self, upload_id: str, part: int, info: PartInfo) -> bool:
        # The reference's condition: this upload, not finished, slot empty.
        # "Slot empty" is written as "parts.N is not a document" rather than
        # the reference's {parts.N: null}: on an array of documents a null
        # test on parts.N also matches every element that lacks a field
        # named N, i.e. any element, so it would let a taken slot be
        # overwritten. $type tests only values, and $nor makes a missing
        # element (beyond the end) count as empty.
        slot = f"parts.{int(part)}"
        result = self._coll("upload").update_one(
            {
                "_id": upload_id,
                "hash": {"$exists": False},
                "$nor": [{slot: {"$type": "object"}}],
            },
            {"$set": {slot: self._part_doc(info)}},
        )
        return result.matched_count == 1

    def complete_part(self, upload_id: str, part: int, info: PartInfo) -> bool:
        # The whole element is replaced, as the reference does.
        slot = f"parts.{int(part)}"
        result = self._coll("upload").update_one(
            {"_id": upload_id, slot: {"$type": "object"}},
            {"$set": {slot: self._part_doc(info)}},
        )
        return result.matched_count == 1

    def set_upload_hash(self, upload_id: str, hash: str) -> bool:
        result = self._coll("upload").update_one(
            {"_id": upload_id}, {"$set": {"hash": hash}}
        )
        return result.matched_count == 1

    def set_upload_owner(self, upload_id: str, owner: str, expires: datetime) -> bool:
        result = self._coll("upload").update_one(
            {
                "_id": upload_id,
                "hash": {"$exists": True},
                "$or": [{"owner": {"$exists": False}}, {"owner": owner}],
            },
            {"$set": {"owner": owner, "expires": _time(expires)}},
        )
        return result.matched_count == 1

    def delete_upload(self, upload_id: str, *, only_unowned: bool) -> bool:
        # The parts are embedded: one document, one atomic delete.
        query: dict[str, Any] = {"_id": upload_id}
        if only_unowned:
            query["owner"] = {"$exists": False}
        return self._coll("upload").delete_one(query).deleted_count == 1

    def iter_uploads(
        self, expired_before: datetime | None = None
    ) -> Iterator[UploadRecord]:
        uploads = self._coll("upload")
        query: dict[str, Any] = {}
        if expired_before is not None:
            query["expires"] = {"$lt": _time(expired_before)}
        batch = min(self.batch_size, _MAX_UPLOAD_BATCH)
        last: str | None = None
        while True:
            q = dict(query)
            if last is not None:
                q["_id"] = {"$gt": last}
            docs = list(uploads.find(q).sort("_id", _ASC).limit(batch))
            for doc in docs:
                yield self._upload(doc)
            if len(docs) < batch:
                return
            last = docs[-1]["_id"]

    # -- named refs ----------------------------------------------------------

    def put_ref(self, name: str, hash: str, now: datetime) -> bool:
        refs = self._coll("ref")
        update = {"$set": {"hash": hash, "mtime": _time(now)}}
        while True:
            try:
                result = refs.update_one({"_id": name}, update, upsert=True)
            except DuplicateKeyError:
                continue  # a concurrent put created it first: now it matches
            return result.upserted_id is not None

    def get_ref(self, name: str) -> RefRecord | None:
        doc = self._coll("ref").find_one({"_id": name})
        return None if doc is None else RefRecord(name, doc["hash"], _dt(doc["mtime"]))

    def delete_ref(self, name: str) -> bool:
        return self._coll("ref").delete_one({"_id": name}).deleted_count == 1

    def list_refs(
        self, prefix: str = "", after: str = "", limit: int = 1000
    ) -> list[RefRecord]:
        if limit <= 0:
            return []  # pymongo reads limit 0 as "no limit"
        cond = _key_range(prefix, after)
        cursor = (
            self._coll("ref")
            .find({"_id": cond} if cond else {})
            .sort("_id", _ASC)
            .limit(limit)
        )
        return [RefRecord(d["_id"], d["hash"], _dt(d["mtime"])) for d in cursor]

    def iter_refs(self) -> Iterator[RefRecord]:
        after = ""
        while batch := self.list_refs(after=after, limit=self.batch_size):
            yield from batch
            after = batch[-1].name

    # -- S3 buckets and objects ------------------------------------------------

    @staticmethod
    def _bucket(doc: Mapping[str, Any]) -> BucketRecord:
        return BucketRecord(
            doc["_id"], doc["owner"], _dt(doc["created"]), doc["region"]
        )

    def create_bucket(self, record: BucketRecord) -> bool:
        doc = {
            "_id": record.name,
            "owner": record.owner,
            "created": _time(record.created),
            "region": record.region,
        }
        try:
            self._coll("bucket").insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    def get_bucket(self, name: str) -> BucketRecord | None:
        doc = self._coll("bucket").find_one({"_id": name})
        return None if doc is None else self._bucket(doc)

    def delete_bucket(self, name: str) -> bool:
        # Without a transaction an object put between the check and the
        # delete would outlive its bucket; iter_objects still lists it, so
        # the GC keeps its blobs.
        if self._coll("object").find_one({"bucket": name}, {"_id": 1}) is not None:
            raise Conflict(f"bucket {name!r} is not empty")
        if self._coll("bucket").delete_one({"_id": name}).deleted_count != 1:
            return False
        s3uploads = self._coll("s3upload")
        ids = [d["_id"] for d in s3uploads.find({"bucket": name}, {"_id": 1})]
        for i in range(0, len(ids), 1000):
            chunk = ids[i : i + 1000]
            # Uploads first: parts without an upload are inert.
            s3uploads.delete_many({"_id": {"$in": chunk}})
            self._coll("s3part").delete_many({"upload_id": {"$in": chunk}})
        return True

    def list_buckets(self, owner: str | None = None) -> list[BucketRecord]:
        query = {} if owner is None else {"owner": owner}
        cursor = self._coll("bucket").find(query).sort("_id", _ASC)
        return [self._bucket(d) for d in cursor]

    @staticmethod
    def _object_doc(r: ObjectRecord) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "bucket": r.bucket,
            "key": r.key,
            "size": Int64(r.size),
            "etag": r.etag,
            "mtime": _time(r.mtime),
            "content_type": r.content_type,
            "headers": _pairs(r.headers),
            "metadata": _pairs(r.metadata),
        }
        if r.hash is not None:
            doc["hash"] = r.hash
        if r.index is not None:
            doc["index"] = _index_doc(r.index)
        if r.upload_id is not None:
            doc["upload_id"] = r.upload_id  # completing it again finds the object
        return doc

    @staticmethod
    def _object(doc: Mapping[str, Any]) -> ObjectRecord:
        return ObjectRecord(
            doc["bucket"],
            doc["key"],
            int(doc["size"]),
            doc["etag"],
            _dt(doc["mtime"]),
            doc.get("hash"),
            _index(doc.get("index")),
            doc["content_type"],
            _mapping(doc["headers"]),
            _mapping(doc["metadata"]),
            doc.get("upload_id"),
        )

    def _upsert(
        self, kind: str, query: Mapping[str, Any], doc: Mapping[str, Any]
    ) -> Any:
        coll = self._coll(kind)
        while True:
            try:
                return coll.replace_one(query, doc, upsert=True)
            except DuplicateKeyError:
                continue  # a concurrent upsert inserted first: now it matches

    def put_object(self, record: ObjectRecord) -> None:
        self._upsert(
            "object",
            {"bucket": record.bucket, "key": record.key},
            self._object_doc(record),
        )

    def get_object(self, bucket: str, key: str) -> ObjectRecord | None:
        doc = self._coll("object").find_one({"bucket": bucket, "key": key})
        return None if doc is None else self._object(doc)

    def delete_object(self, bucket: str, key: str) -> bool:
        result = self._coll("object").delete_one({"bucket": bucket, "key": key})
        return result.deleted_count == 1

    def delete_object_if(self, record: ObjectRecord) -> bool:
        # Every field as written (replace_one keeps the _id, so it does not
        # tell versions apart); the optional ones absent when unset.
        query: dict[str, Any] = {
            "hash": {"$exists": False},
            "index": {"$exists": False},
            "upload_id": {"$exists": False},
            **self._object_doc(record),
        }
        return self._coll("object").delete_one(query).deleted_count == 1

    def _objects_query(
        self, bucket: str, prefix: str, start_after: str
    ) -> dict[str, Any]:
        """The listing filter: a range on the (bucket, key) index."""
        query: dict[str, Any] = {"bucket": bucket}
        cond = _key_range(prefix, start_after)
        if cond:
            query["key"] = cond
        return query

    _OBJECT_ORDER = [("bucket", _ASC), ("key", _ASC)]

    def list_objects(
        self, bucket: str, prefix: str = "", start_after: str = "", limit: int = 1000
    ) -> list[ObjectRecord]:
        if limit <= 0:
            return []
        cursor = (
            self._coll("object")
            .find(self._objects_query(bucket, prefix, start_after))
            .sort(self._OBJECT_ORDER)
            .limit(limit)
        )
        return [self._object(d) for d in cursor]

    def iter_objects(self) -> Iterator[ObjectRecord]:
        # Every object, whether or not its bucket record still exists: the
        # GC must keep whatever any object points at.
        objects = self._coll("object")
        query: dict[str, Any] = {}
        while True:
            docs = list(
                objects.find(query).sort(self._OBJECT_ORDER).limit(self.batch_size)
            )
            for doc in docs:
                yield self._object(doc)
            if len(docs) < self.batch_size:
                return
            b, k = docs[-1]["bucket"], docs[-1]["key"]
            query = {"$or": [{"bucket": {"$gt": b}}, {"bucket": b, "key": {"$gt": k}}]}

    # -- S3 multipart uploads -------------------------------------------------

    @staticmethod
    def _s3_upload(doc: Mapping[str, Any]) -> S3UploadRecord:
        return S3UploadRecord(
            doc["_id"],
            doc["bucket"],
            doc["key"],
            _dt(doc["initiated"]),
            doc["owner"],
            doc["content_type"],
            _mapping(doc["headers"]),
            _mapping(doc["metadata"]),
        )

    @staticmethod
    def _s3_part(doc: Mapping[str, Any]) -> S3PartRecord:
        return S3PartRecord(
            doc["upload_id"],
            int(doc["number"]),
            doc["hash"],
            int(doc["size"]),
            doc["md5"],
            _dt(doc["mtime"]),
        )

    def create_s3_upload(self, record: S3UploadRecord) -> None:
        doc = {
            "_id": record.id,
            "bucket": record.bucket,
            "key": record.key,
            "initiated": _time(record.initiated),
            "owner": record.owner,
            "content_type": record.content_type,
            "headers": _pairs(record.headers),
            "metadata": _pairs(record.metadata),
        }
        try:
            self._coll("s3upload").insert_one(doc)
        except DuplicateKeyError:
            raise Conflict(f"upload id {record.id!r} already exists") from None

    def get_s3_upload(self, upload_id: str) -> S3UploadRecord | None:
        doc = self._coll("s3upload").find_one({"_id": upload_id})
        return None if doc is None else self._s3_upload(doc)

    def _s3_upload_exists(self, upload_id: str) -> bool:
        return (
            self._coll("s3upload").find_one({"_id": upload_id}, {"_id": 1}) is not None
        )

    def put_s3_part(self, part: S3PartRecord) -> bool:
        if not self._s3_upload_exists(part.upload_id):
            return False
        key = {"upload_id": part.upload_id, "number": part.number}
        doc = {
            **key,
            "hash": part.hash,
            "size": Int64(part.size),
            "md5": part.md5,
            "mtime": _time(part.mtime),
        }
        self._upsert("s3part", key, doc)
        if not self._s3_upload_exists(part.upload_id):
            # Completed or aborted meanwhile (it deletes the upload before its
            # parts): do not leave our part behind, and say it is gone.
            self._coll("s3part").delete_one(key)
            return False
        return True

    def list_s3_parts(
        self, upload_id: str, after: int = 0, limit: int = 10000
    ) -> list[S3PartRecord]:
        if limit <= 0:
            return []
        cursor = (
            self._coll("s3part")
            .find({"upload_id": upload_id, "number": {"$gt": after}})
            .sort("number", _ASC)
            .limit(limit)
        )
        return [self._s3_part(d) for d in cursor]

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
        s3uploads = self._coll("s3upload")
        query: dict[str, Any] = {"bucket": bucket}
        cond = _key_range(prefix, "")
        if cond:
            query["key"] = cond
        if key_marker:
            marker = None
            if upload_id_marker:
                marker = s3uploads.find_one(
                    {"_id": upload_id_marker, "bucket": bucket, "key": key_marker},
                )
            if marker is not None:
                # Strictly after the marker in (key, initiated, id) order.
                t = marker["initiated"]
                after: list[dict[str, Any]] = [
                    {"key": {"$gt": key_marker}},
                    {"key": key_marker, "initiated": {"$gt": t}},
                    {
                        "key": key_marker,
                        "initiated": t,
                        "_id": {"$gt": upload_id_marker},
                    },
                ]
            elif upload_id_marker:
                # The marker upload is gone: list the key's uploads again
                # rather than risk skipping some.
                after = [{"key": {"$gte": key_marker}}]
            else:
                after = [{"key": {"$gt": key_marker}}]
            query["$or"] = after
        cursor = (
            s3uploads.find(query)
            .sort([("bucket", _ASC), ("key", _ASC), ("initiated", _ASC), ("_id", _ASC)])
            .limit(limit)
        )
        return [self._s3_upload(d) for d in cursor]

    def complete_s3_upload(self, upload_id: str, record: ObjectRecord) -> bool:
        s3uploads = self._coll("s3upload")
        now = utcnow()
        # 1. Claim the upload, so only one completion proceeds. The upload
        #    (and so its parts, for the GC) stays until the object exists.
        claimed = s3uploads.update_one(
            {
                "_id": upload_id,
                "$or": [
                    {"completing": {"$exists": False}},
                    {"completing": {"$lt": now - _COMPLETE_CLAIM}},
                ],
            },
            {"$set": {"completing": now}},
        )
        if claimed.matched_count != 1:
            return False
        # 2. The object now refers to the parts' blobs.
        try:
            self.put_object(record)
        except BaseException:
            # Let a retry proceed now rather than after the claim times out
            # (if this fails too, the claim still times out).
            s3uploads.update_one(
                {"_id": upload_id, "completing": now}, {"$unset": {"completing": ""}}
            )
            raise
        # 3. The upload is done; parts without an upload are inert.
        s3uploads.delete_one({"_id": upload_id})
        self._coll("s3part").delete_many({"upload_id": upload_id})
        return True

    def delete_s3_upload(self, upload_id: str) -> bool:
        if self._coll("s3upload").delete_one({"_id": upload_id}).deleted_count != 1:
            return False
        self._coll("s3part").delete_many({"upload_id": upload_id})
        return True

    def iter_s3_uploads(
        self, initiated_before: datetime | None = None
    ) -> Iterator[tuple[S3UploadRecord, list[S3PartRecord]]]:
        s3uploads = self._coll("s3upload")
        query: dict[str, Any] = {}
        if initiated_before is not None:
            query["initiated"] = {"$lt": _time(initiated_before)}
        last: str | None = None
        while True:
            q = dict(query)
            if last is not None:
                q["_id"] = {"$gt": last}
            docs = list(s3uploads.find(q).sort("_id", _ASC).limit(self.batch_size))
            for doc in docs:
                record = self._s3_upload(doc)
                yield record, self.list_s3_parts(record.id)
            if len(docs) < self.batch_size:
                return
            last = docs[-1]["_id"]

    # -- leases and job state -------------------------------------------------

    def acquire_lease(
        self, name: str, holder: str, ttl: timedelta, now: datetime
    ) -> bool:
        # One upsert: it matches a free, expired or own lease and takes it;
        # if the lease is someone else's and live, the upsert tries to
        # insert a second document with the same _id and fails.
        try:
            self._coll("lease").update_one(
                {
                    "_id": name,
                    "$or": [{"expires": {"$lte": _time(now)}}, {"holder": holder}],
                },
                {"$set": {"holder": holder, "expires": _time(now + ttl)}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    def release_lease(self, name: str, holder: str) -> None:
        self._coll("lease").delete_one({"_id": name, "holder": holder})

    def put_state(self, key: str, value: Mapping[str, Any]) -> None:
        # Kept as JSON text: the same values come back as from SQLite, and
        # arbitrary keys need no escaping.
        text = json.dumps(dict(value), default=str)
        self._upsert("state", {"_id": key}, {"value": text})

    def get_state(self, key: str) -> dict[str, Any] | None:
        doc = self._coll("state").find_one({"_id": key})
        return None if doc is None else json.loads(doc["value"])
