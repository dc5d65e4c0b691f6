"""The erasure-posix promises proved over HTTP against a real ``blobstore
serve`` (gunicorn, two workers): 6 drives with parity 2, blobs of 0, 1,
1 MiB - 1, 1 MiB, 7 MiB + 3 and 40 MiB.

For each fault: up to two drives lost, offline or corrupt, every GET still
answers the exact bytes and a PUT still works; with three gone, GET and PUT
are a clean 503 (never wrong bytes) and the failed PUT leaves nothing
behind. After each, the drives come back (a new empty disk where one was
lost), ``POST /v1/admin/heal`` rebuilds, every shard is on disk again and
every read is exact. docs/reliability.md lists what each case proved.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import requests

from blobstore.catalog.sqlite import SQLiteCatalog
from tests.e2e.server import ServerProcess

MiB = 1024 * 1024
SIZES = [0, 1, MiB - 1, MiB, 7 * MiB + 3, 40 * MiB]
DRIVES, PARITY = 6, 2


def content(size: int, seed: int) -> bytes:
    block = hashlib.sha512(f"{seed}".encode()).digest() * 2048  # 128 KiB
    return (block * (size // len(block) + 1))[:size]


class ErasureService:
    """The service, its drives, and the blobs it holds."""

    def __init__(self, root: Path) -> None:
        self.drives = [root / f"d{i}" for i in range(DRIVES)]
        config = (
            '[backend]\ntype = "erasure-posix"\n'
            f"drives = {json.dumps([str(d) for d in self.drives])}\n"
            f"parity = {PARITY}\n"
        )
        self.server = ServerProcess(root / "srv", config=config, workers=2)
        self.blobs: dict[str, bytes] = {}

    @property
    def url(self) -> str:
        return self.server.url

    def put(self, data: bytes) -> requests.Response:
        return requests.post(f"{self.url}/v1/blobs", data=data, timeout=120)

    def put_all(self, seed: int) -> None:
        for size in SIZES:
            data = content(size, seed)
            answer = self.put(data)
            assert answer.status_code in (200, 201), answer.text
            self.blobs[answer.json()["hash"]] = data

    def assert_reads_exact(self) -> None:
        for digest, data in self.blobs.items():
            got = requests.get(f"{self.url}/v1/blobs/{digest}", timeout=120)
            assert got.status_code == 200, (len(data), got.text[:300])
            assert got.content == data, len(data)
            if len(data) > 10:  # a range across a block boundary, too
                start = max(0, len(data) // 2 - 5)
                ranged = requests.get(
                    f"{self.url}/v1/blobs/{digest}",
                    headers={"Range": f"bytes={start}-{start + 9}"},
                    timeout=120,
                )
                assert ranged.content == data[start : start + 10]

    def heal(self) -> dict:
        answer = requests.post(f"{self.url}/v1/admin/heal", timeout=600)
        assert answer.status_code == 200, answer.text
        lines = [json.loads(line) for line in answer.text.splitlines() if line]
        summary = lines[-1]
        assert "progress" not in summary, summary
        return summary

    def object_names(self) -> dict[str, str]:
        catalog = SQLiteCatalog(self.server.data_dir / "catalog.db")
        try:
            return {h: catalog.get_blob(h).name for h in self.blobs}
        finally:
            catalog.close()

    def shard_files(self, drive: Path) -> list[Path]:
        names = self.object_names()
        return [drive / "objects" / n[:2] / n for n in names.values()]

    def assert_every_shard_on_disk(self) -> None:
        for drive in self.drives:
            for shard in self.shard_files(drive):
                assert shard.is_file(), shard

    def wipe(self, drive: Path) -> None:
        """The disk is lost and a new, empty one is mounted at its path."""
        shutil.rmtree(drive)
        drive.mkdir()

    def corrupt(self, drive: Path) -> None:
        """Bitrot in every shard on *drive*: one byte flipped in each block."""
        for shard in self.shard_files(drive):
            size = shard.stat().st_size
            with open(shard, "r+b") as f:
                for offset in range(0, size, MiB):
                    f.seek(offset)
                    byte = f.read(1)
                    if byte:
                        f.seek(offset)
                        f.write(bytes([byte[0] ^ 0xFF]))

    def tmp_files(self) -> list[Path]:
        return [
            p
            for d in self.drives
            if d.is_dir()
            for p in (d / "tmp").rglob("*")
            if p.is_file()
        ]


@pytest.fixture
def service(tmp_path):
    service = ErasureService(tmp_path)
    service.server.start()
    service.put_all(seed=1)
    service.assert_reads_exact()
    yield service
    service.server.stop()


def recover_and_check(service: ErasureService) -> None:
    summary = service.heal()
    assert summary.get("unrecoverable", 0) == 0, summary
    service.assert_every_shard_on_disk()
    service.assert_reads_exact()
    # And a second heal finds nothing left to do.
    again = service.heal()
    assert again.get("healed", 0) == 0, again


@pytest.mark.parametrize("lost", [1, 2])
def test_wiped_drives_up_to_parity(service, lost):
    for drive in service.drives[:lost]:
        service.wipe(drive)
    service.assert_reads_exact()
    service.put_all(seed=10 + lost)  # writes still work, degraded
    service.assert_reads_exact()
    recover_and_check(service)


def test_corrupt_shard_blocks_on_two_drives(service):
    for drive in service.drives[2:4]:
        service.corrupt(drive)
    service.assert_reads_exact()  # checksums catch it: never the rotten bytes
    recover_and_check(service)


def test_a_drive_path_replaced_by_a_file(service):
    drive = service.drives[4]
    shutil.rmtree(drive)
    drive.write_bytes(b"the mount point is lost")
    service.assert_reads_exact()
    service.put_all(seed=20)
    service.assert_reads_exact()
    drive.unlink()
    drive.mkdir()  # a new disk
    recover_and_check(service)


def test_drives_renamed_away_and_back(service):
    away = [d.with_name(d.name + ".away") for d in service.drives[:2]]
    for drive, moved in zip(service.drives[:2], away, strict=True):
        os.rename(drive, moved)
    service.assert_reads_exact()
    service.put_all(seed=30)  # written while two drives are missing
    for drive, moved in zip(service.drives[:2], away, strict=True):
        os.rename(moved, drive)
    service.assert_reads_exact()
    recover_and_check(service)


def test_three_drives_gone_is_a_clean_503_and_leaves_nothing(service):
    away = [d.with_name(d.name + ".away") for d in service.drives[:3]]
    for drive, moved in zip(service.drives[:3], away, strict=True):
        os.rename(drive, moved)
    for digest, data in service.blobs.items():
        got = requests.get(f"{service.url}/v1/blobs/{digest}", timeout=120)
        if not data:
            continue  # the empty blob needs no shard
        assert got.status_code == 503, (len(data), got.status_code)
        assert got.json()["code"] == "read_quorum"
        assert got.headers["Retry-After"]
    before = requests.get(f"{service.url}/v1/stats", timeout=30).json()["blobs"]
    new = content(3 * MiB, seed=99)
    refused = service.put(new)
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "write_quorum"
    after = requests.get(f"{service.url}/v1/stats", timeout=30).json()["blobs"]
    assert after == before
    digest = hashlib.sha384(new).hexdigest()
    assert (
        requests.head(f"{service.url}/v1/blobs/{digest}", timeout=30).status_code == 404
    )
    assert service.tmp_files() == []
    for drive, moved in zip(service.drives[:3], away, strict=True):
        os.rename(moved, drive)
    service.assert_reads_exact()
    recover_and_check(service)
