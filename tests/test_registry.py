"""Catalogs and backends are found by config ``type`` through entry points."""

import pytest

from blobstore.backends.local import LocalBackend
from blobstore.backends.memory import MemoryBackend
from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore.errors import BadParams
from blobstore.registry import BACKENDS
from blobstore.registry import CATALOGS
from blobstore.registry import available
from blobstore.registry import backend_from_config
from blobstore.registry import catalog_from_config


def test_builtin_types_are_registered():
    assert {"sqlite", "mongodb"} <= set(available(CATALOGS))
    assert {"memory", "local"} <= set(available(BACKENDS))


def test_builds_from_config_tables(tmp_path):
    catalog = catalog_from_config({"type": "sqlite", "path": str(tmp_path / "c.db")})
    assert isinstance(catalog, SQLiteCatalog)
    backend = backend_from_config({"type": "local", "path": str(tmp_path / "b")})
    assert isinstance(backend, LocalBackend)
    assert isinstance(backend_from_config({"type": "memory"}), MemoryBackend)


def test_unknown_type_names_the_choices():
    with pytest.raises(
        BadParams, match=r"unknown backend type 'nope' \(available: .*local"
    ):
        backend_from_config({"type": "nope"})


def test_missing_type():
    with pytest.raises(BadParams, match="catalog.type is required"):
        catalog_from_config({"path": "x"})
