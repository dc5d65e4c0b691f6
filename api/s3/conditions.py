"""Conditional requests and byte ranges, as S3 evaluates them.

Preconditions follow RFC 9110's order, which is also S3's documented
behaviour: ``If-Match`` (else ``If-Unmodified-Since``) can fail with 412;
then ``If-None-Match`` (else ``If-Modified-Since``) gives 304 on GET/HEAD.
So ``If-Match`` true with ``If-Unmodified-Since`` false still returns the
object, and ``If-None-Match`` false with ``If-Modified-Since`` true returns 304.
The ``x-amz-copy-source-if-*`` headers of a copy follow the same rules, but
every failure is 412.

Times compare at whole seconds (``Last-Modified`` has no finer resolution).
Unparseable dates are ignored, as S3 does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from email.utils import format_datetime
from email.utils import parsedate_to_datetime

from blobstore.records import ObjectRecord
from blobstore_api import ranges
from blobstore_api.ranges import RangeNotSatisfiable
from blobstore_api.s3.errors import InvalidArgument
from blobstore_api.s3.errors import InvalidRange
from blobstore_api.s3.errors import PreconditionFailed

__all__ = [
    "NOT_MODIFIED",
    "check_copy_source",
    "check_preconditions",
    "http_date",
    "parse_copy_range",
    "parse_range",
]

NOT_MODIFIED = "not-modified"

_COPY_RANGE_RE = re.compile(r"bytes=(\d+)-(\d+)")


def http_date(t: datetime) -> str:
    """``Wed, 12 Oct 2009 17:50:00 GMT``."""
    return format_datetime(t.astimezone(UTC).replace(microsecond=0), usegmt=True)


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when


def _seconds(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(microsecond=0)


def _etag_matches(header: str, etag: str) -> bool:
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        candidate = candidate.removeprefix("W/").strip().strip('"')
        if candidate == etag:
            return True
    return False


def _evaluate(
    get: Callable[[str], str | None], prefix: str, record: ObjectRecord
) -> tuple[str | None, str | None]:
    """(412 reason, 304 reason) for the conditional headers named *prefix*-*."""
    mtime = _seconds(record.mtime)
    if_match = get(f"{prefix}if-match")
    if if_match is not None:
        if not _etag_matches(if_match, record.etag):
            return "If-Match", None
    else:
        since = _parse_date(get(f"{prefix}if-unmodified-since"))
        if since is not None and mtime > since:
            return "If-Unmodified-Since", None
    if_none_match = get(f"{prefix}if-none-match")
    if if_none_match is not None:
        if _etag_matches(if_none_match, record.etag):
            return None, "If-None-Match"
    else:
        since = _parse_date(get(f"{prefix}if-modified-since"))
        if since is not None and mtime <= since:
            return None, "If-Modified-Since"
    return None, None


def check_preconditions(
    get: Callable[[str], str | None], record: ObjectRecord
) -> str | None:
    """Evaluate a GET/HEAD's conditional headers against *record*.

    :returns: :data:`NOT_MODIFIED` when the answer is 304, else None.
    :raises PreconditionFailed:
    """
    failed, not_modified = _evaluate(get, "", record)
    if failed:
        raise PreconditionFailed(Condition=failed)
    return NOT_MODIFIED if not_modified else None


def check_copy_source(get: Callable[[str], str | None], record: ObjectRecord) -> None:
    """Evaluate ``x-amz-copy-source-if-*``; any failure is 412."""
    failed, not_modified = _evaluate(get, "x-amz-copy-source-", record)
    if failed or not_modified:
        raise PreconditionFailed(
            Condition=f"x-amz-copy-source-{failed or not_modified}"
        )


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range a ``Range`` header asks of *size* bytes
    (:func:`blobstore_api.ranges.parse_range`'s grammar).

    :returns: None to send the whole object (no header, a malformed one, or
        several ranges, which S3 does not serve).
    :raises InvalidRange: the range is not satisfiable (416).
    """
    try:
        selected = ranges.parse_range(value, size)
    except RangeNotSatisfiable:
        raise _unsatisfiable(size) from None
    return None if selected is None else (selected.start, selected.end)


def _unsatisfiable(size: int) -> InvalidRange:
    return InvalidRange(
        headers={"Content-Range": f"bytes */{size}"}, ActualObjectSize=size
    )


def parse_copy_range(value: str, size: int) -> tuple[int, int]:
    """``x-amz-copy-source-range: bytes=first-last``, inside the source.

    :raises InvalidArgument: malformed, or outside the source object.
    """
    match = _COPY_RANGE_RE.fullmatch(value.strip())
    if match is None:
        raise InvalidArgument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last "
            "where first and last are the zero-based offsets of the first and last "
            "bytes to copy",
            ArgumentName="x-amz-copy-source-range",
            ArgumentValue=value,
        )
    first, last = int(match.group(1)), int(match.group(2))
    if first > last or last >= size:
        raise InvalidArgument(
            f"Range specified is not valid for source object of size: {size}",
            ArgumentName="x-amz-copy-source-range",
            ArgumentValue=value,
        )
    return first, last
