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

    from blobstore.clock import utcnow
    from blobstore.errors import Unavailable
    from blobstore.records import BlobRecord

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


def test_running_totals_are_rebuilt_for_a_database_without_them(tmp_path):
    import sqlite3

    from blobstore.clock import utcnow
    from blobstore.records import BlobRecord
    from blobstore.records import MultipartIndex

    catalog = SQLiteCatalog(tmp_path / "c.db")
    catalog.insert_blob(BlobRecord("1" * 96, 10, utcnow(), "n1"))
    catalog.insert_blob(BlobRecord("2" * 96, 5, utcnow(), "n2"))
    index = MultipartIndex(("1" * 96, "2" * 96), (10, 5))
    catalog.insert_blob(BlobRecord("3" * 96, 15, utcnow(), None, index))
    catalog.close()
    db = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    db.executescript(
        "DROP TRIGGER blobs_count_insert; DROP TRIGGER blobs_count_delete;"
        "DROP TABLE blob_totals;"
    )
    db.close()
    reopened = SQLiteCatalog(tmp_path / "c.db")
    totals = reopened.blob_totals()
    assert (totals.blobs, totals.bytes, totals.composites) == (2, 15, 1)
    reopened.delete_blob_if("2" * 96, "n2", utcnow())
    assert reopened.blob_totals().bytes == 10


def test_in_memory_catalogs_never_share_a_database():
    # Each ":memory:" catalog is its own database, even when a new one is
    # made while an old one's connections are still open.
    from blobstore.clock import utcnow
    from blobstore.records import BlobRecord

    first = SQLiteCatalog(":memory:")
    first.insert_blob(BlobRecord("1" * 96, 1, utcnow(), "n1"))
    for _ in range(50):
        other = SQLiteCatalog(":memory:")
        assert other.get_blob("1" * 96) is None
        assert other.blob_totals().blobs == 0


def test_close_closes_every_threads_connection(tmp_path):
    import sqlite3
    import threading

    catalog = SQLiteCatalog(tmp_path / "c.db")
    seen = []

    def use():
        catalog.get_blob("0" * 96)
        seen.append(catalog._local.db)

    t = threading.Thread(target=use)
    t.start()
    t.join()
    catalog.get_blob("0" * 96)
    seen.append(catalog._local.db)
    catalog.close()
    for db in seen:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            db.execute("SELECT 1")
