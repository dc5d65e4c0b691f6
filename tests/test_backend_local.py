"""The Backend contract for ``type = "local"`` (the one-drive, no-parity
erasure set), plus its crash rules and what makes it a plain file store."""

import io
import os

import pytest

from blobstore.backends.erasure import tmpfiles
from blobstore.backends.local import LocalBackend
from tests.backend_contract import BackendContract
from tests.backend_contract import names


class TestLocalBackend(BackendContract):
    @pytest.fixture
    def backend(self, tmp_path):
        backend = LocalBackend(tmp_path / "blobs")
        yield backend
        backend.close()


def test_leftover_temp_files_are_removed_at_start(tmp_path):
    LocalBackend(tmp_path).close()
    (tmp_path / "tmp" / "crashed.abc").write_bytes(b"half a blob")
    backend = LocalBackend(tmp_path)
    assert list((tmp_path / "tmp").iterdir()) == []
    assert names(backend) == set()
    backend.close()


def test_a_live_writers_temp_file_survives_another_start(tmp_path):
    """gunicorn workers start at different times: one worker's start must
    not delete another worker's write in progress (it holds a lock)."""
    LocalBackend(tmp_path).close()
    fd, path = tmpfiles.create(tmp_path / "tmp", "inflight")
    try:
        backend = LocalBackend(tmp_path)
        assert path.exists()
        backend.close()
    finally:
        os.close(fd)
    backend = LocalBackend(tmp_path)  # now nobody holds it: swept
    assert not path.exists()
    backend.close()


def test_open_gives_a_real_file_for_sendfile(tmp_path):
    backend = LocalBackend(tmp_path)
    backend.put("f1", io.BytesIO(b"data"), 4)
    f, size = backend.open("f1")
    with f:
        assert os.fstat(f.fileno()).st_size == size == 4
    backend.close()


def test_the_stored_file_is_the_blob_itself(tmp_path):
    backend = LocalBackend(tmp_path, block_size=4096)
    data = os.urandom(3 * 4096 + 5)
    backend.put("plain", io.BytesIO(data), len(data))
    assert (tmp_path / "objects" / "pl" / "plain").read_bytes() == data
    # Checksums live beside it: 512-byte header + one 16-byte sum per block.
    assert (tmp_path / "objects" / "pl" / "plain.meta").stat().st_size == 512 + 4 * 16
    backend.close()
