"""Time as the store keeps it: timezone-aware UTC, whole milliseconds.

Every catalog can store a millisecond exactly (MongoDB's dates are
milliseconds), so every time the store records or compares is made here:
a put time read back equals the one written, and GC's "put at or before
the cut-off" never depends on a catalog's rounding.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

__all__ = ["to_millis", "utcnow"]


def to_millis(t: datetime) -> datetime:
    """*t* in UTC, truncated to whole milliseconds (naive means UTC)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    t = t.astimezone(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def utcnow() -> datetime:
    """The current time as the catalogs store it."""
    return to_millis(datetime.now(UTC))
