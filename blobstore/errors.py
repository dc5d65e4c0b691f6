"""The one error hierarchy of blobstore.

Every failure the library reports on purpose is a :class:`BlobStoreError`.
The HTTP layer maps each class to a status once (one handler per class), so
code that raises only has to pick the class that says what went wrong::

    raise BlobNotFound(f"blob {hash!r} not found")

The classes group by what the caller can do about them:

* :class:`NotFound` -- the thing named does not exist (404).
* :class:`BadParams` -- the request is wrong and retrying it unchanged will
  fail again: malformed hashes, sizes, part numbers, wrong content (400).
* :class:`Conflict` -- the request is well formed but clashes with the current
  state of an upload, a lease or another writer (409).
* :class:`Unavailable` -- a backend or catalog cannot be reached; the same
  request may succeed later (503).
* :class:`InsufficientStorage` -- the backend is (nearly) full (507).
* :class:`AccessDenied` -- the credentials do not allow it (401/403; only
  the HTTP client raises it).
* :class:`Corrupt` -- stored data or metadata is inconsistent (500); an
  operator should look.

The S3 object layer (:mod:`blobstore.s3.objects`) adds a few subclasses so its
callers can tell *which* thing is missing or wrong (a bucket or a key, a bad
bucket name or a bad part list) without parsing messages.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "BadParams",
    "BlobNotFound",
    "BlobStoreError",
    "BucketExists",
    "BucketNotEmpty",
    "BucketNotFound",
    "ConfigError",
    "Conflict",
    "Corrupt",
    "DriveMismatch",
    "EntityTooLarge",
    "HashMismatch",
    "InsufficientStorage",
    "InvalidBucketName",
    "InvalidKey",
    "InvalidPart",
    "InvalidPartOrder",
    "KeyTooLong",
    "LeaseHeld",
    "NotFound",
    "ObjectNotFound",
    "PartConflict",
    "PartTooSmall",
    "ReadQuorumError",
    "RefNotFound",
    "RefSourceError",
    "SizeMismatch",
    "Unavailable",
    "UploadComplete",
    "UploadInUse",
    "UploadNotFound",
    "WriteQuorumError",
]


class BlobStoreError(Exception):
    """Base class of every error blobstore raises on purpose.

    ``code`` is a stable machine-readable name (used in JSON error bodies).
    """

    code = "internal_error"


class NotFound(BlobStoreError):
    code = "not_found"


class BlobNotFound(NotFound):
    code = "blob_not_found"


class UploadNotFound(NotFound):
    code = "upload_not_found"


class RefNotFound(NotFound):
    code = "ref_not_found"


class BucketNotFound(NotFound):
    """No S3 bucket of that name."""

    code = "bucket_not_found"


class ObjectNotFound(NotFound):
    """No S3 object under that key."""

    code = "object_not_found"


class BadParams(BlobStoreError):
    """The request is invalid; retrying it unchanged fails again."""

    code = "bad_params"


class HashMismatch(BadParams):
    """The content read does not have the hash the caller claimed."""

    code = "hash_mismatch"


class SizeMismatch(BadParams):
    """The content is shorter or longer than the size the caller declared."""

    code = "size_mismatch"


class ConfigError(BadParams):
    """The configuration is invalid. The message names the key::

    config error: [limits] min_part_size must be an integer
    """

    code = "config_error"

    def __str__(self) -> str:
        return f"config error: {super().__str__()}"


class InvalidBucketName(BadParams):
    """The name breaks the S3 bucket naming rules."""

    code = "invalid_bucket_name"


class InvalidKey(BadParams):
    """An S3 key that is empty, too long, or not representable."""

    code = "invalid_key"


class KeyTooLong(InvalidKey):
    """An S3 key longer than 1024 bytes (UTF-8)."""

    code = "key_too_long"


class EntityTooLarge(BadParams):
    """An S3 object or part bigger than S3 allows."""

    code = "entity_too_large"


class InvalidPart(BadParams):
    """A completion lists a part that was not uploaded (or has another ETag)."""

    code = "invalid_part"


class InvalidPartOrder(BadParams):
    """A completion lists parts out of ascending order."""

    code = "invalid_part_order"


class PartTooSmall(BadParams):
    """A part other than the last is below the minimum part size."""

    code = "part_too_small"


class Conflict(BlobStoreError):
    """The request clashes with the current state of the store."""

    code = "conflict"


class UploadComplete(Conflict):
    """The upload is finished; its parts can no longer change."""

    code = "upload_complete"


class UploadInUse(Conflict):
    """The upload is owned by something else."""

    code = "upload_in_use"


class PartConflict(Conflict):
    """A part slot already holds different content, or is being written."""

    code = "part_conflict"


class BucketExists(Conflict):
    """The bucket name is taken by another owner."""

    code = "bucket_exists"


class BucketNotEmpty(Conflict):
    """A bucket that still holds objects cannot be deleted."""

    code = "bucket_not_empty"


class LeaseHeld(Conflict):
    """Another process holds the lease (for example, another GC is running)."""

    code = "lease_held"


class Unavailable(BlobStoreError):
    """A backend or catalog cannot serve the request right now."""

    code = "unavailable"


class ReadQuorumError(Unavailable):
    """Fewer intact shards of an erasure-coded object than are needed to read it.

    Never answered with wrong bytes: the read stops here instead.
    """

    code = "read_quorum"


class WriteQuorumError(Unavailable):
    """Too few drives took a write for it to count; nothing was kept."""

    code = "write_quorum"


class RefSourceError(Unavailable):
    """An external GC ref source could not be read; the GC pass stopped
    before deleting anything (a missing kind of ref would mean data loss)."""

    code = "ref_source_failed"


class AccessDenied(BlobStoreError):
    """The credentials given do not allow the operation (a remote service
    answered 401 or 403; see :mod:`blobstore.client`)."""

    code = "access_denied"


class InsufficientStorage(BlobStoreError):
    """The backend has no room for the blob."""

    code = "insufficient_storage"


class DriveMismatch(BadParams):
    """A configured drive belongs to another deployment or another layout.

    Raised at start so that a misconfigured drive list never mixes two data
    sets; using the drive needs an operator's decision.
    """

    code = "drive_mismatch"


class Corrupt(BlobStoreError):
    """Stored data or metadata is inconsistent."""

    code = "corrupt"
