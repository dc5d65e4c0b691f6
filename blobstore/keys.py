"""Keys in order: range bounds for prefix listings over string keys.

The one home of this arithmetic: catalogs (ref names, S3 keys) and the S3
listing (skipping past a common prefix) use it. Every catalog lists names
and S3 keys in UTF-8 byte order, which is also Unicode code point order
(UTF-8 was designed so), which is how Python, SQLite's BINARY collation and
MongoDB's simple collation compare strings. A prefix listing is then the
range ``prefix <= key < prefix_upper_bound``, which an index answers without
scanning the rest of the keys.
"""

from __future__ import annotations

__all__ = ["prefix_upper_bound"]

_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with *prefix*.

    None when there is no such string (empty prefix, or only U+10FFFF): the
    range is then unbounded above. Surrogates are skipped because they cannot
    be encoded in UTF-8, so no stored key contains one.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if code > _MAX_CODE_POINT:
            continue  # carry into the previous character
        if code in _SURROGATES:
            code = _SURROGATES.stop
        return "".join(chars) + chr(code)
    return None
