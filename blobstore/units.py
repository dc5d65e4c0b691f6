"""Sizes and durations as people write them: the one grammar for both.

Every size or duration the configuration, the native API (``?expires=``) or
the S3 settings accept goes through :func:`parse_size` or
:func:`parse_duration`, so ``"8M"`` or ``"1h30m"`` means the same wherever it
is written (config/README.md documents the grammar)::

    parse_size("8MiB") == parse_size("8M") == 8 * 2**20
    parse_size("10MB") == 10 * 10**6
    parse_duration("1h30m") == timedelta(minutes=90)

**Sizes**: a non-negative integer of bytes, or a number (decimals allowed)
followed by a unit, case-insensitive, with optional space: ``B``; ``K``,
``KiB``, ``M``, ``MiB``, ``G``, ``GiB``, ``T``, ``TiB`` (powers of 1024);
``KB``, ``MB``, ``GB``, ``TB`` (powers of 1000). The result must be a whole
number of bytes (``"1.5KiB"`` is 1536; ``"1.5B"`` is an error).

**Durations**: a non-negative number of seconds (an integer, a float, or
digits in a string), or one or more ``<number><unit>`` terms added up, with
units ``ms``, ``s``, ``m``, ``h``, ``d`` (``"500ms"``, ``"30m"``,
``"1h30m"``, ``"7d"``, ``"1.5h"``).

Both raise :class:`ValueError` with a message saying what is accepted; the
caller names the setting (``[limits] min_part_size must be ...``).
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from decimal import Decimal

__all__ = ["DURATION_HELP", "SIZE_HELP", "parse_duration", "parse_size"]

#: What the parsers accept, for error messages.
SIZE_HELP = 'a size in bytes (an integer, or a string like "5MiB", "8M" or "10MB")'
DURATION_HELP = 'a duration (seconds, or a string like "30m", "1h30m" or "7d")'

_BINARY = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    **_BINARY,
    **{f"{p}ib": n for p, n in _BINARY.items()},
    **{f"{p}b": 10 ** (3 * i) for i, p in enumerate("kmgt", start=1)},
}
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")

_DURATION_UNITS = {
    "ms": Decimal("0.001"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),
}
_TERM = r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)"
_DURATION_RE = re.compile(rf"\s*(?:{_TERM}\s*)+")
_TERM_RE = re.compile(_TERM)
_SECONDS_RE = re.compile(r"\s*\d+(?:\.\d+)?\s*")


def parse_size(value: object) -> int:
    """Bytes, from an integer or a string (see the module docstring).

    :raises ValueError: anything else, a negative size, or a fraction of a byte.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"must be {SIZE_HELP}, not {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must be {SIZE_HELP}, not {value!r}")
        return value
    match = _SIZE_RE.fullmatch(value.strip().lower())
    if match is None or match[2] not in _SIZE_UNITS:
        raise ValueError(f"must be {SIZE_HELP}, not {value!r}")
    size = Decimal(match[1]) * _SIZE_UNITS[match[2]]
    if size != size.to_integral_value():
        raise ValueError(f"must be a whole number of bytes, not {value!r}")
    return int(size)


def parse_duration(value: object) -> timedelta:
    """A duration, from a number of seconds or a string (see the module
    docstring).

    :raises ValueError: anything else, or a negative duration.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be {DURATION_HELP}, not {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"must be {DURATION_HELP}, not {value!r}")
        return _timedelta(value)
    text = value.lower()
    if _SECONDS_RE.fullmatch(text):
        return _timedelta(float(Decimal(text.strip())))
    if not _DURATION_RE.fullmatch(text):
        raise ValueError(f"must be {DURATION_HELP}, not {value!r}")
    terms = _TERM_RE.findall(text)
    seconds = sum(Decimal(number) * _DURATION_UNITS[unit] for number, unit in terms)
    return _timedelta(float(seconds))


def _timedelta(seconds: float) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"must be {DURATION_HELP}, not {seconds:g} seconds") from None
