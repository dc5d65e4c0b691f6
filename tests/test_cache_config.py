"""The ``[cache]`` table: wrap_with_cache, sizes, and one-line errors."""

from __future__ import annotations

import pytest

from blobstore.backends.cache import CacheBackend
from blobstore.backends.cache import parse_size
from blobstore.backends.cache import wrap_with_cache
from blobstore.backends.cache.limits import DEFAULT_MIN_FREE
from blobstore.backends.cache.limits import Limits
from blobstore.backends.memory import MemoryBackend
from blobstore.errors import BadParams


@pytest.fixture
def remote():
    return MemoryBackend()


@pytest.mark.parametrize("config", [None, {}, {"enabled": False, "path": "/x"}])
def test_disabled_or_missing_returns_the_backend_itself(remote, config):
    assert wrap_with_cache(remote, config) is remote


def test_enabled_wraps_with_every_option(remote, tmp_path):
    cache = wrap_with_cache(
        remote,
        {
            "enabled": True,
            "path": str(tmp_path / "c"),
            "max_size": "10GiB",
            "high_water": 0.95,
            "low_water": 0.5,
            "min_free": "500 MB",
            "max_object_size": "1GiB",
            "keep_on_put": False,
            "verify_reads": False,
            "max_fills": 2,
        },
    )
    try:
        assert isinstance(cache, CacheBackend)
        assert cache.remote is remote
        assert cache.limits == Limits(10 << 30, 0.95, 0.5, 500 * 10**6, 1 << 30)
        assert (tmp_path / "c" / "objects").is_dir()
    finally:
        cache.close()


def test_defaults(remote, tmp_path):
    cache = wrap_with_cache(
        remote, {"enabled": True, "path": str(tmp_path), "max_size": 4096}
    )
    try:
        assert cache.limits == Limits(4096, 0.90, 0.80, DEFAULT_MIN_FREE, 1024)
    finally:
        cache.close()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"path": None}, "cache.path: required"),
        ({"path": ""}, "cache.path: required"),
        ({"max_size": None}, "cache.max_size: required"),
        ({"max_size": "lots"}, "cache.max_size: must be a size in bytes"),
        ({"max_size": "10 parsecs"}, "cache.max_size: must be a size"),
        ({"max_size": -1}, "cache.max_size: must be a size"),
        ({"max_size": 0}, "cache.max_size must be positive"),
        ({"max_size": True}, "cache.max_size: must be a size"),
        ({"max_size": 1.5}, "cache.max_size: must be a size"),
        ({"min_free": "-5GiB"}, "cache.min_free: must be a size"),
        ({"high_water": "0.9"}, "cache.high_water: expected a fraction"),
        ({"high_water": 1.5}, "cache.high_water must be in (0, 1]"),
        ({"low_water": 0}, "cache.low_water must be in (0, 1]"),
        ({"low_water": 0.95}, "cache.low_water (0.95) must be below"),
        ({"enabled": "yes"}, "cache.enabled: expected true or false"),
        ({"keep_on_put": 1}, "cache.keep_on_put: expected true or false"),
        ({"max_fills": 0}, "cache.max_fills: expected a positive integer"),
        ({"max_sise": 5}, "cache.max_sise: unknown key"),
    ],
)
def test_bad_tables_name_the_key(remote, tmp_path, changes, message):
    config = {"enabled": True, "path": str(tmp_path / "c"), "max_size": "1GiB"}
    config.update(changes)
    config = {k: v for k, v in config.items() if v is not None}
    with pytest.raises(BadParams) as info:
        wrap_with_cache(remote, config)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "c").exists()  # checked before touching the disk


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (0, 0),
        (1234, 1234),
        ("1234", 1234),
        ("10GiB", 10 << 30),
        ("10 gib", 10 << 30),
        ("10G", 10 << 30),
        ("10GB", 10 * 10**9),
        ("1.5MiB", 3 << 19),
        ("512k", 512 << 10),
        ("2TiB", 2 << 40),
        ("7 B", 7),
    ],
)
def test_parse_size(text, expected):
    assert parse_size(text, "cache.x") == expected


def test_unknown_key_is_reported_even_when_disabled(remote):
    with pytest.raises(BadParams, match="cache.size: unknown key"):
        wrap_with_cache(remote, {"enabled": False, "size": 5})
