"""The rules of S3 names and multipart uploads, apart from storage.

Pure functions, so the object layer (:mod:`blobstore.s3.objects`) and its
tests share one statement of each rule:

* bucket names follow the S3 naming rules for general purpose buckets;
* keys are any UTF-8 text up to 1024 bytes that XML 1.0 can carry (listings
  return keys in XML); they are catalog values only, never file paths;
* a multipart object's ETag is the MD5 of the concatenated binary MD5s of its
  parts, then ``-N`` (what S3 and every client expect);
* upload ids sort in the order uploads were started, so a listing can page
  through the uploads of one key by id.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from datetime import datetime

from blobstore.errors import InvalidBucketName
from blobstore.errors import InvalidKey
from blobstore.errors import KeyTooLong

__all__ = [
    "MAX_KEY_BYTES",
    "MAX_OBJECT_SIZE",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MAX_PUT_SIZE",
    "MIN_PART_SIZE",
    "check_bucket_name",
    "check_key",
    "multipart_etag",
    "new_s3_upload_id",
]

MAX_KEY_BYTES = 1024
#: The largest single PUT (and the largest part).
MAX_PUT_SIZE = 5 * 1024**3
MAX_PART_SIZE = MAX_PUT_SIZE
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10000
MAX_OBJECT_SIZE = 5 * 1024**4

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IPV4_RE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# Characters XML 1.0 cannot carry, even as character references.
_NOT_XML_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def check_bucket_name(name: object) -> str:
    """Return *name* if it is a valid S3 bucket name, else raise
    :class:`InvalidBucketName`."""
    if not isinstance(name, str) or not _BUCKET_RE.fullmatch(name):
        raise InvalidBucketName(
            f"bucket name {name!r} must be 3-63 lowercase letters, digits, dots "
            "and hyphens, beginning and ending with a letter or digit"
        )
    if ".." in name or ".-" in name or "-." in name:
        raise InvalidBucketName(
            f"bucket name {name!r} has adjacent dots, or a dot next to a hyphen"
        )
    if _IPV4_RE.fullmatch(name):
        raise InvalidBucketName(f"bucket name {name!r} looks like an IP address")
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        raise InvalidBucketName(f"bucket name {name!r} uses a reserved prefix/suffix")
    return name


def check_key(key: object) -> str:
    """Return *key* if it is a valid object key, else raise :class:`InvalidKey`."""
    if not isinstance(key, str) or not key:
        raise InvalidKey("object key is empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey("object key is not valid UTF-8") from None
    if size > MAX_KEY_BYTES:
        raise KeyTooLong(f"object key is {size} bytes long (maximum {MAX_KEY_BYTES})")
    if _NOT_XML_RE.search(key):
        raise InvalidKey("object key has control characters XML cannot carry")
    return key


def multipart_etag(md5s: Sequence[str]) -> str:
    """The S3 ETag (unquoted) of an object made of parts with these hex MD5s."""
    digest = hashlib.md5(usedforsecurity=False)
    for md5 in md5s:
        digest.update(bytes.fromhex(md5))
    return f"{digest.hexdigest()}-{len(md5s)}"


def new_s3_upload_id(now: datetime) -> str:
    """A fresh upload id that sorts after every id made earlier: the start
    time in milliseconds (12 hex digits), then 128 random bits."""
    millis = int(now.timestamp() * 1000)
    return f"{millis:012x}{secrets.token_hex(16)}"
