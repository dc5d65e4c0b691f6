"""S3-style listing pages over a key-ordered catalog range query.

S3 lists keys in UTF-8 byte order, from a marker, optionally rolling keys up
into *common prefixes* at a delimiter. A bucket may hold millions of keys
under one common prefix, so a page must never scan them: after emitting a
common prefix, the lister jumps past it with one range query that starts at
the prefix's upper bound (:func:`~blobstore.keys.prefix_upper_bound`).

The algorithm is written once over a *cursor* the caller defines, and serves
both object listings (cursor: a key) and multipart-upload listings (cursor: a
key and an upload id).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Generic
from typing import TypeVar

from blobstore.keys import prefix_upper_bound

__all__ = ["Page", "common_prefix", "paginate"]

T = TypeVar("T")
C = TypeVar("C")

#: Rows fetched per catalog query: a page and one more (to know whether the
#: page is truncated), at least MIN_BATCH (common prefixes may swallow rows),
#: at most MAX_BATCH (a full S3 page of 1000, plus one).
MAX_BATCH = 1001
MIN_BATCH = 100


@dataclass(slots=True)
class Page(Generic[T]):
    """One page: entries in order (records and common prefixes interleave in
    S3's order, but are reported separately), whether more follow, and the
    last entry returned (the marker for the next page)."""

    items: list[T] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    last_item: T | None = None
    last_prefix: str | None = None
    #: True when the page's last entry is a common prefix.
    ends_with_prefix: bool = False

    @property
    def count(self) -> int:
        return len(self.items) + len(self.prefixes)


def common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    """The common prefix *key* rolls up into, or None (no delimiter after
    *prefix*). *key* must start with *prefix*."""
    if not delimiter:
        return None
    i = key.find(delimiter, len(prefix))
    return None if i < 0 else key[: i + len(delimiter)]


def paginate(
    *,
    fetch: Callable[[C, int], list[T]],
    key_of: Callable[[T], str],
    after_item: Callable[[T], C],
    at_key: Callable[[str], C],
    start: C,
    marker: str,
    prefix: str,
    delimiter: str,
    limit: int,
) -> Page[T]:
    """One listing page of at most *limit* entries.

    :param fetch: ``fetch(cursor, n)``: up to *n* records after *cursor*,
        whose keys start with *prefix*, in listing order.
    :param after_item: the cursor just after a record.
    :param at_key: the cursor at a key, inclusive (used to skip a prefix).
    :param start: where the page starts (from the client's marker).
    :param marker: the client's marker key (``""`` for none): if it lies in a
        common prefix, that prefix was returned by an earlier page.
    """
    page: Page[T] = Page()
    if limit <= 0:
        return page
    cursor = start
    skip = (
        common_prefix(marker, prefix, delimiter) if marker.startswith(prefix) else None
    )
    if skip is not None:
        bound = prefix_upper_bound(skip)
        if bound is None:
            return page
        cursor, skip = at_key(bound), None
    batch_size = min(max(limit + 1, MIN_BATCH), MAX_BATCH)
    while True:
        batch = fetch(cursor, batch_size)
        for item in batch:
            key = key_of(item)
            if skip is not None and key.startswith(skip):
                continue
            skip = None
            if page.count == limit:
                page.truncated = True
                return page
            cp = common_prefix(key, prefix, delimiter)
            if cp is None:
                page.items.append(item)
                page.last_item = item
                page.ends_with_prefix = False
            else:
                page.prefixes.append(cp)
                page.last_prefix = cp
                page.ends_with_prefix = True
                skip = cp
        if len(batch) < batch_size:
            return page
        if skip is not None and key_of(batch[-1]).startswith(skip):
            # The batch ended inside a common prefix: jump over the rest of
            # it in one query instead of reading its keys.
            bound = prefix_upper_bound(skip)
            if bound is None:
                return page
            cursor, skip = at_key(bound), None
        else:
            cursor = after_item(batch[-1])
