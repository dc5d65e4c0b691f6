"""The Catalog contract for the SQLite catalog (a database file per test)."""

import pytest

from blobstore.catalog.sqlite import SQLiteCatalog
from tests.catalog_contract import CatalogContract


class TestSQLiteCatalog(CatalogContract):
    @pytest.fixture
    def catalog(self, tmp_path):
        catalog = SQLiteCatalog(tmp_path / "catalog.db")
        yield catalog
        catalog.close()


def test_a_writer_holding_the_lock_too_long_makes_the_catalog_unavailable(tmp_path):
    import sqlite3

    from blobstore.catalog.records import BlobRecord
    from blobstore.catalog.records import utcnow
    from blobstore.errors import Unavailable

    catalog = SQLiteCatalog(tmp_path / "c.db", busy_timeout=0.2)
    other = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(Unavailable, match="c.db unavailable: database is locked"):
            catalog.insert_blob(BlobRecord("0" * 96, 1, utcnow(), "n1"))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert catalog.insert_blob(BlobRecord("0" * 96, 1, utcnow(), "n1"))
