"""The Backend contract for the in-memory backend."""

import pytest

from blobstore.backends.memory import MemoryBackend
from tests.backend_contract import BackendContract


class TestMemoryBackend(BackendContract):
    @pytest.fixture
    def backend(self):
        return MemoryBackend()


def test_a_backend_without_redundancy_refuses_to_heal():
    from blobstore.errors import BadParams

    backend = MemoryBackend()
    assert not backend.can_heal
    with pytest.raises(BadParams, match="backend memory has no redundancy to heal"):
        backend.heal()
