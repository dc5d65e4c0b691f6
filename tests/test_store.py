"""The Store contract suite over every catalog × backend (tests/factories.py)."""

import pytest

from blobstore import Store
from tests.factories import BACKENDS
from tests.factories import CATALOGS
from tests.store_contract import StoreContract


@pytest.fixture(params=sorted(CATALOGS))
def catalog(request, tmp_path):
    catalog = CATALOGS[request.param](tmp_path, request)
    yield catalog
    catalog.close()


@pytest.fixture(params=sorted(BACKENDS))
def backend(request, tmp_path):
    backend = BACKENDS[request.param](tmp_path, request)
    yield backend
    backend.close()


class TestStore(StoreContract):
    @pytest.fixture
    def store(self, catalog, backend):
        return Store(catalog, backend, min_part_size=10)
