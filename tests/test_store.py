"""The Store contract suite over every catalog × backend (tests/factories.py)."""

import pytest

from blobstore import Store
from tests.factories import BACKENDS
from tests.factories import CATALOGS
from tests.factories import STORE_PAIRS
from tests.store_contract import StoreContract


@pytest.fixture(params=STORE_PAIRS, ids=[f"{c}-{b}" for c, b in STORE_PAIRS])
def store(request, tmp_path):
    catalog_name, backend_name = request.param
    catalog = CATALOGS[catalog_name](tmp_path, request)
    backend = BACKENDS[backend_name](tmp_path, request)
    yield Store(catalog, backend, min_part_size=10)
    backend.close()
    catalog.close()


class TestStore(StoreContract):
    pass


def test_window_reads_a_range_and_closes_its_reader():
    import io

    from blobstore.reader import Window

    source = io.BytesIO(b"0123456789")
    with Window(source, 3, 4) as w:
        assert w.read() == b"3456"
        assert w.read() == b""
    assert source.closed
