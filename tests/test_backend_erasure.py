"""The erasure-posix backend: the Backend contract for several layouts, and
its set-up rules (format files, layouts, capacity, trash, registry)."""

from __future__ import annotations

import io
import json
import os

import pytest

from blobstore.backends.erasure import ErasureBackend
from blobstore.backends.erasure.layout import Layout
from blobstore.errors import BadParams
from blobstore.errors import BlobNotFound
from blobstore.errors import DriveMismatch
from blobstore.errors import InsufficientStorage
from blobstore.errors import Unavailable
from blobstore.registry import backend_from_config
from tests.backend_contract import BackendContract
from tests.backend_contract import names
from tests.erasure_helpers import make_set
from tests.erasure_helpers import put_bytes
from tests.erasure_helpers import read_back

BLOCK = 64 * 1024


class ErasureContract(BackendContract):
    drive_count = 1
    parity = 0
    block_size = BLOCK
    # Block edges are where striping and padding go wrong.
    sizes = (
        *BackendContract.sizes,
        BLOCK - 1,
        BLOCK,
        BLOCK + 1,
        4 * BLOCK,
        5 * BLOCK - 3,
    )

    @pytest.fixture
    def backend(self, tmp_path):
        backend = make_set(
            tmp_path, self.drive_count, self.parity, block_size=self.block_size
        )
        yield backend
        backend.close()


class TestOneDriveNoParity(ErasureContract):
    pass


class TestThreeDrivesNoParity(ErasureContract):
    """Striping without parity: k = 3 pieces per block, padded."""

    drive_count = 3


class TestFourDrivesTwoParity(ErasureContract):
    drive_count = 4
    parity = 2


class TestSixDrivesTwoParity(ErasureContract):
    drive_count = 6
    parity = 2


# -- layout and format files --------------------------------------------------


@pytest.mark.parametrize(
    ("drives", "parity", "data", "write_quorum"),
    [(1, 0, 1, 1), (2, 1, 1, 2), (4, 2, 2, 3), (6, 2, 4, 4), (5, 2, 3, 3)],
)
def test_layout_quorums(drives, parity, data, write_quorum):
    layout = Layout(drives, parity)
    assert layout.data == data
    assert layout.write_quorum == write_quorum


def test_placement_rotates_by_name():
    layout = Layout(6, 2)
    starts = {layout.placement(f"name{i}")[0] for i in range(200)}
    assert starts == set(range(6))
    for i in range(20):
        assert sorted(layout.placement(f"name{i}")) == list(range(6))


@pytest.mark.parametrize(("drives", "parity"), [(4, 3), (1, 1), (3, -1), (0, 0)])
def test_parity_out_of_range_is_refused(tmp_path, drives, parity):
    with pytest.raises(BadParams):
        make_set(tmp_path, drives, parity)


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(BadParams, match="list"):
        ErasureBackend(str(tmp_path), parity=0)
    with pytest.raises(BadParams, match="twice"):
        ErasureBackend([tmp_path / "a", tmp_path / "a"], parity=1)
    with pytest.raises(BadParams, match="block_size"):
        make_set(tmp_path, 1, 0, block_size=100)
    with pytest.raises(BadParams, match="parity"):
        make_set(tmp_path, 2, "1")


def test_a_drive_that_is_a_file_is_refused_at_start(tmp_path):
    (tmp_path / "d1").write_bytes(b"a file, not a directory")
    with pytest.raises(Unavailable, match="d1"):
        make_set(tmp_path, 4, 2)


def test_a_drive_of_another_deployment_is_refused(tmp_path):
    make_set(tmp_path / "one", 4, 2).close()
    make_set(tmp_path / "two", 4, 2).close()
    # Drive 2 of set "one" swapped for drive 2 of set "two".
    os.rename(tmp_path / "one" / "d2", tmp_path / "spare")
    os.rename(tmp_path / "two" / "d2", tmp_path / "one" / "d2")
    with pytest.raises(DriveMismatch, match="different deployments"):
        make_set(tmp_path / "one", 4, 2)


def test_a_different_layout_is_refused(tmp_path):
    make_set(tmp_path, 4, 2).close()
    with pytest.raises(DriveMismatch, match="4 drives with parity 2"):
        make_set(tmp_path, 4, 1)


def test_reordered_drives_are_refused(tmp_path):
    make_set(tmp_path, 4, 2).close()
    paths = [tmp_path / f"d{i}" for i in (1, 0, 2, 3)]
    with pytest.raises(DriveMismatch, match="reordered"):
        ErasureBackend(paths, parity=2)


def test_unformatted_drive_holding_objects_is_refused(tmp_path):
    backend = make_set(tmp_path, 4, 2)
    put_bytes(backend, "x1", b"data")
    backend.close()
    (tmp_path / "d3" / "format.json").unlink()
    with pytest.raises(DriveMismatch, match=r"no format\.json"):
        make_set(tmp_path, 4, 2)


def test_garbage_format_file_is_refused(tmp_path):
    make_set(tmp_path, 1, 0).close()
    (tmp_path / "d0" / "format.json").write_text("{not json")
    with pytest.raises(DriveMismatch, match="not a blobstore"):
        make_set(tmp_path, 1, 0)


def test_format_records_the_set(tmp_path):
    make_set(tmp_path, 4, 2).close()
    formats = [
        json.loads((tmp_path / f"d{i}" / "format.json").read_text()) for i in range(4)
    ]
    assert len({f["deployment_id"] for f in formats}) == 1
    assert [f["drive_index"] for f in formats] == [0, 1, 2, 3]
    assert all(f["layout"] == {"drives": 4, "parity": 2} for f in formats)


def test_reopening_keeps_the_data(tmp_path):
    backend = make_set(tmp_path, 4, 2)
    put_bytes(backend, "keep", b"kept across restarts")
    backend.close()
    backend = make_set(tmp_path, 4, 2)
    assert read_back(backend, "keep") == b"kept across restarts"
    backend.close()


# -- capacity and stats ---------------------------------------------------------


def test_writes_refused_below_the_reserve(tmp_path):
    backend = make_set(tmp_path, 4, 2, reserve_bytes=1 << 62)
    with pytest.raises(InsufficientStorage, match="nearly full"):
        put_bytes(backend, "big", b"x" * 1000)
    assert names(backend) == set()
    assert all(list(d.tmp.iterdir()) == [] for d in backend.drives)
    backend.close()


def test_stats_report_drives(tmp_path):
    backend = make_set(tmp_path, 4, 2)
    stats = backend.stats()
    assert stats["type"] == "erasure-posix"
    assert (stats["data_shards"], stats["parity_shards"]) == (2, 2)
    assert stats["write_quorum"] == 3
    assert stats["drives_online"] == 4
    st = os.statvfs(tmp_path)
    for drive in stats["drives"]:
        assert drive["online"] is True
        assert 0 < drive["free_bytes"] <= drive["total_bytes"]
        # f_bavail (what an unprivileged writer may use), not f_bfree.
        assert abs(drive["free_bytes"] - st.f_bavail * st.f_frsize) < 1 << 30
    assert stats["free_bytes"] == min(d["free_bytes"] for d in stats["drives"]) * 2
    backend.close()


# -- removes go through the trash --------------------------------------------------


def test_remove_goes_through_the_trash_purged_in_background(tmp_path):
    backend = make_set(tmp_path, 4, 2, purge_interval=3600)
    put_bytes(backend, "gone", os.urandom(10_000))
    backend._purger.close()  # hold the purge so the trash can be seen
    backend.remove("gone")
    assert all(len(list(d.trash.iterdir())) == 2 for d in backend.drives)
    with pytest.raises(BlobNotFound):
        backend.open("gone")
    backend.close()
    # The next process purges what was left at start, in the background.
    backend = make_set(tmp_path, 4, 2, purge_interval=3600)
    assert backend._purger.wait_cycle(timeout=30)
    assert all(list(d.trash.iterdir()) == [] for d in backend.drives)
    backend.close()


def test_background_purge_after_remove(tmp_path):
    backend = make_set(tmp_path, 4, 2, purge_interval=3600)
    put_bytes(backend, "gone", os.urandom(10_000))
    backend.remove("gone")
    assert backend._purger.wait_cycle(timeout=30)
    assert all(list(d.trash.iterdir()) == [] for d in backend.drives)
    backend.close()


# -- registry: erasure-posix and local are the same code ---------------------------


def test_registry_builds_erasure_and_local(tmp_path):
    drives = [str(tmp_path / f"d{i}") for i in range(4)]
    backend = backend_from_config(
        {"type": "erasure-posix", "drives": drives, "parity": 2}
    )
    assert isinstance(backend, ErasureBackend)
    assert backend.layout == Layout(4, 2)
    backend.close()
    local = backend_from_config({"type": "local", "path": str(tmp_path / "one")})
    assert isinstance(local, ErasureBackend)
    assert local.layout == Layout(1, 0)
    local.put("x1", io.BytesIO(b"abc"), 3)
    assert (tmp_path / "one" / "objects" / "x1" / "x1").read_bytes() == b"abc"
    local.close()
