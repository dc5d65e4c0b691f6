"""The one size and duration grammar (blobstore.units), as every setting reads it."""

from datetime import timedelta

import pytest

from blobstore.backends.cache.limits import parse_size as cache_parse_size
from blobstore.errors import BadParams
from blobstore.units import parse_duration
from blobstore.units import parse_size


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90),
        (1.5, 1.5),
        ("90", 90),
        ("30m", 1800),
        ("24h", 86400),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("7d", 7 * 86400),
        ("0", 0),
        ("1.5h", 5400),
        (" 30 ", 30),
        (2.5, 2.5),
        ("1m30s", 90),
    ],
)
def test_durations(value, seconds):
    assert parse_duration(value) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "m",
        "30x",
        "-5",
        -5,
        "1h junk",
        True,
        None,
        [],
        float("inf"),
        float("nan"),
        "1e5",
        "99999999999999d",
    ],
)
def test_bad_durations(value):
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (1024, 1024),
        ("1024", 1024),
        ("5MiB", 5 * 2**20),
        ("5 MiB", 5 * 2**20),
        ("4gib", 4 * 2**30),
        ("10MB", 10**7),
        ("1KB", 1000),
        ("3B", 3),
        ("8M", 8 * 2**20),
        ("512k", 512 * 2**10),
        ("1.5MiB", 3 * 2**19),
        ("2 TiB", 2 * 2**40),
        ("10G", 10 * 2**30),
        ("10GB", 10 * 10**9),
    ],
)
def test_sizes(value, size):
    assert parse_size(value) == size


@pytest.mark.parametrize(
    "value", ["", "5XB", "MiB", "-1", -1, 1.5, True, "1.5B", "0.1KiB", "8Q", None]
)
def test_bad_sizes(value):
    with pytest.raises(ValueError):
        parse_size(value)


def test_cache_sizes_read_the_same_grammar():
    """``[cache]`` and ``[limits]`` once disagreed on "8M"; both read units now."""
    assert cache_parse_size("8M", "cache.size") == parse_size("8M")
    with pytest.raises(BadParams, match="cache.size: must be a size"):
        cache_parse_size("8Q", "cache.size")


def test_the_message_says_what_is_accepted():
    with pytest.raises(ValueError, match=r'"5MiB"'):
        parse_size("lots")
    with pytest.raises(ValueError, match=r'"1h30m"'):
        parse_duration("soon")
