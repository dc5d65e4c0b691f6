"""The Backend contract for the in-memory backend."""

import pytest

from blobstore.backends.memory import MemoryBackend
from tests.backend_contract import BackendContract


class TestMemoryBackend(BackendContract):
    @pytest.fixture
    def backend(self):
        return MemoryBackend()
