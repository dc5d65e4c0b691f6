"""The metadata records: what the catalog keeps and the Store returns.

Plain immutable values with no behaviour beyond describing themselves. They
live outside :mod:`blobstore.catalog` because they are the library's
vocabulary (``Store.stat`` returns a :class:`BlobRecord`, ``upload_info`` an
:class:`UploadRecord`), not a storage detail. Times are made by
:mod:`blobstore.clock` (UTC, whole milliseconds).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime

from blobstore.errors import Corrupt

__all__ = [
    "BlobRecord",
    "BlobTotals",
    "BucketRecord",
    "MultipartIndex",
    "ObjectRecord",
    "PartInfo",
    "PutResult",
    "RefRecord",
    "S3PartRecord",
    "S3UploadRecord",
    "UploadRecord",
]


@dataclass(frozen=True, slots=True)
class MultipartIndex:
    """The parts of a composite blob, in order: their hashes and sizes."""

    hashes: tuple[str, ...]
    sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.hashes) != len(self.sizes):
            raise Corrupt("index size/length mismatch (database corruption?)")

    def __len__(self) -> int:
        return len(self.hashes)

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(zip(self.hashes, self.sizes, strict=True))

    @property
    def size(self) -> int:
        return sum(self.sizes)

    def to_dict(self) -> dict[str, list]:
        return {"hashes": list(self.hashes), "sizes": list(self.sizes)}

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, int]]) -> MultipartIndex:
        return cls(tuple(h for h, _ in pairs), tuple(s for _, s in pairs))


@dataclass(frozen=True, slots=True)
class BlobRecord:
    """``hash → where its bytes are``. The record *is* the blob's visibility.

    A plain blob has a backend object ``name``; a composite blob (a finished
    multipart upload) has no object of its own, only the ``index`` of its
    parts, each itself a blob.
    """

    hash: str
    size: int
    put_time: datetime
    name: str | None = None
    index: MultipartIndex | None = None

    @property
    def is_composite(self) -> bool:
        return self.index is not None

    def object_name(self) -> str:
        """The backend object of a plain blob.

        :raises Corrupt: the record has no object (a composite, or damaged).
        """
        if self.name is None:
            raise Corrupt(f"blob {self.hash} has no backend object of its own")
        return self.name

    def parts(self) -> MultipartIndex:
        """The part index of a composite blob.

        :raises Corrupt: the record has no index (a plain blob, or damaged).
        """
        if self.index is None:
            raise Corrupt(f"blob {self.hash} is not a composite (no part index)")
        return self.index


@dataclass(frozen=True, slots=True)
class PutResult:
    """What a put stored: the content's hash and size, whether it was new
    (False: the content already existed and was deduplicated), and its MD5
    when asked for."""

    hash: str
    size: int
    created: bool
    md5: str | None = None


@dataclass(frozen=True, slots=True)
class BlobTotals:
    """What the catalog holds: plain blobs (with bytes stored) and composites."""

    blobs: int
    bytes: int
    composites: int


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One part of a native multipart upload."""

    hash: str
    size: int
    offset: int
    complete: bool


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """A native multipart upload. ``hash`` is set once it is finished."""

    id: str
    expires: datetime
    parts: tuple[PartInfo | None, ...] = ()
    hash: str | None = None
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class RefRecord:
    """A named reference: a GC root that pins one blob."""

    name: str
    hash: str
    mtime: datetime


@dataclass(frozen=True, slots=True)
class BucketRecord:
    name: str
    owner: str
    created: datetime
    region: str = "us-east-1"


@dataclass(frozen=True, slots=True)
class ObjectRecord:
    """An S3 object: ``bucket/key`` → a blob (``hash``) or a part ``index``.

    ``headers`` keeps the standard headers stored with the object
    (Content-Type, Cache-Control, ...); ``metadata`` the ``x-amz-meta-*`` ones.
    ``upload_id`` is the S3 multipart upload that made the object, if one did
    (so that completing the same upload again can succeed, as in S3).
    """

    bucket: str
    key: str
    size: int
    etag: str
    mtime: datetime
    hash: str | None = None
    index: MultipartIndex | None = None
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    upload_id: str | None = None

    def blob_hashes(self) -> list[str]:
        """The blobs this object keeps alive."""
        if self.index is not None:
            return list(self.index.hashes)
        return [self.hash] if self.hash else []


@dataclass(frozen=True, slots=True)
class S3UploadRecord:
    id: str
    bucket: str
    key: str
    initiated: datetime
    owner: str = ""
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class S3PartRecord:
    upload_id: str
    number: int
    hash: str
    size: int
    md5: str
    mtime: datetime
