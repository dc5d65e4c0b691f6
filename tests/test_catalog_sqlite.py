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
