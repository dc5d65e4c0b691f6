"""The Backend contract for the local-directory backend, plus its crash rules."""

import io
import os

import pytest

from blobstore.backends.local import LocalBackend
from tests.backend_contract import BackendContract
from tests.backend_contract import names


class TestLocalBackend(BackendContract):
    @pytest.fixture
    def backend(self, tmp_path):
        return LocalBackend(tmp_path / "blobs")


def test_leftover_temp_files_are_removed_at_start(tmp_path):
    LocalBackend(tmp_path)
    (tmp_path / "tmp" / "crashed.abc").write_bytes(b"half a blob")
    backend = LocalBackend(tmp_path)
    assert list((tmp_path / "tmp").iterdir()) == []
    assert names(backend) == set()


def test_open_gives_a_real_file_for_sendfile(tmp_path):
    backend = LocalBackend(tmp_path)
    backend.put("f1", io.BytesIO(b"data"), 4)
    f, size = backend.open("f1")
    with f:
        assert os.fstat(f.fileno()).st_size == size == 4
