"""The operator commands other than ``gc``: ``stats``, ``uploads``,
``check`` and ``heal``, over real local and erasure-coded (4+2) backends."""

from __future__ import annotations

import io
import json
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from blobstore.checker import check
from blobstore.clock import utcnow
from blobstore.config import build_store
from blobstore.config import load_settings
from blobstore.errors import BlobNotFound
from blobstore.records import S3UploadRecord
from blobstore.s3.rules import new_s3_upload_id
from blobstore_api.cli import main
from tests.erasure_helpers import break_drive
from tests.erasure_helpers import corrupt_shard
from tests.erasure_helpers import delete_shard
from tests.erasure_helpers import shard_drive
from tests.helpers import hash_of

LOCAL = "[backend]\nfsync = false\n"
#: Small parts, so composites are cheap to make.
LIMITS = '[limits]\nmin_part_size = "1KiB"\n'


def erasure_config(root: Path) -> str:
    drives = ", ".join(f'"{root / f"d{i}"}"' for i in range(6))
    return (
        f'[backend]\ntype = "erasure-posix"\ndrives = [{drives}]\n'
        "parity = 2\nfsync = false\n"
    )


class Site:
    """A configuration file and data directory, and the commands over it."""

    def __init__(self, root: Path, config: str) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "blobstore.toml"
        self.config.write_text(config + LIMITS)

    def store(self):
        return build_store(
            load_settings(self.config, data_dir=self.root / "data", env={})
        )

    def run(self, *args: str):
        command, rest = args[0].split(), args[1:]
        options = ["--config", str(self.config), "--data-dir", str(self.root / "data")]
        return CliRunner().invoke(main, [*command, *options, *rest])

    def json(self, *args: str, code: int = 0) -> dict:
        result = self.run(*args, "--json")
        assert result.exit_code == code, (result.stdout, result.stderr)
        return json.loads(result.stdout)

    def put(self, *contents: bytes) -> list[str]:
        with self.store() as store:
            return [store.put(io.BytesIO(c)).hash for c in contents]

    def composite(self, *parts: bytes) -> str:
        with self.store() as store:
            upload = store.new_upload(timedelta(hours=1))
            offset = 0
            for n, part in enumerate(parts):
                store.put_part(
                    upload, n, io.BytesIO(part), len(part), hash_of(part), offset
                )
                offset += len(part)
            _, whole = store.finish_upload(upload, [hash_of(p) for p in parts])
            store.put_ref(f"keep/{whole}", whole)
            return whole

    def read(self, h: str) -> bytes:
        with self.store() as store, store.open(h) as f:
            return f.read()


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("BLOBSTORE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def local(tmp_path, env) -> Site:
    return Site(tmp_path / "local", LOCAL)


def cache_config(root: Path) -> str:
    # keep_on_put: every blob has a good cached copy, which check and heal
    # must look past.
    return (
        f'\n[cache]\nenabled = true\npath = "{root / "cache"}"\n'
        'max_size = "64MiB"\nmin_free = 0\nkeep_on_put = true\n'
    )


@pytest.fixture(params=["erasure", "erasure+cache"])
def erasure(request, tmp_path, env) -> Site:
    root = tmp_path / "erasure"
    config = erasure_config(root)
    if request.param == "erasure+cache":
        config += cache_config(root)
    return Site(root, config)


def name_of(site: Site, h: str) -> str:
    with site.store() as store:
        return store.stat(h).name


# -- stats ---------------------------------------------------------------------


def test_stats(erasure):
    erasure.put(b"one", b"two" * 1000)
    erasure.composite(b"p" * 1024, b"q")
    doc = erasure.json("stats")
    assert (doc["blobs"], doc["composites"]) == (4, 1)
    assert doc["bytes"] == 3 + 3000 + 1024 + 1
    backend = doc["backend"]
    assert backend["type"] == "erasure-posix" and backend["drives_online"] == 6
    assert all(d["online"] and d["free_bytes"] > 0 for d in backend["drives"])
    assert doc["gc"] == {"last_run": None, "last_failure": None}
    assert doc["heal"] is None and doc["check"] is None

    assert erasure.run("gc", "--grace", "0").exit_code == 0
    assert erasure.run("heal").exit_code == 0
    assert erasure.run("check").exit_code == 0
    doc = erasure.json("stats")
    # GC took the two unreferenced blobs; the pinned composite's parts stay.
    assert doc["gc"]["last_run"]["scanned"] == 5
    assert doc["gc"]["last_run"]["deleted"] == 2
    assert doc["heal"]["scanned"] == 2 and doc["check"]["checked"] == 2
    text = erasure.run("stats").stdout
    assert re.search(r"^  blobs +2 \(1\.0 KiB\)$", text, re.M)
    assert "4 data + 2 parity" in text
    assert text.count("online, ") == 6
    assert re.search(r"last gc .*deleted 2", text)
    assert re.search(r"last heal .*2 scanned, 0 healed", text)


# -- uploads -------------------------------------------------------------------


def test_uploads_list_and_remove_expired(local):
    with local.store() as store:
        live = store.new_upload(timedelta(hours=1))
        store.put_part(live, 0, io.BytesIO(b"x" * 1024), 1024, hash_of(b"x" * 1024), 0)
        expired = store.new_upload(utcnow() - timedelta(minutes=1))
        for days, key in ((8, "stale"), (1, "recent")):
            started = utcnow() - timedelta(days=days)
            store.catalog.create_s3_upload(
                S3UploadRecord(new_s3_upload_id(started), "bkt", key, started, "alice")
            )
    doc = local.json("uploads list")
    assert {u["id"]: u["expired"] for u in doc["uploads"]} == {
        live: False,
        expired: True,
    }
    live_doc = next(u for u in doc["uploads"] if u["id"] == live)
    assert (live_doc["parts"], live_doc["bytes"], live_doc["hash"]) == (1, 1024, None)
    assert {u["key"]: u["expired"] for u in doc["s3_uploads"]} == {
        "stale": True,
        "recent": False,
    }
    only = local.json("uploads list", "--expired")
    assert [u["id"] for u in only["uploads"]] == [expired]
    assert [u["key"] for u in only["s3_uploads"]] == ["stale"]
    text = local.run("uploads list").stdout
    assert "2 native uploads, 2 S3 multipart uploads" in text
    assert "EXPIRED" in text and "STALE" in text and "bkt/stale" in text

    assert local.json("uploads remove-expired") == {
        "uploads_removed": 1,
        "s3_uploads_removed": 1,
    }
    after = local.json("uploads list")
    assert [u["id"] for u in after["uploads"]] == [live]
    assert [u["key"] for u in after["s3_uploads"]] == ["recent"]
    # The S3 expiry comes from [s3] multipart_expiry, even with S3 disabled.
    local.config.write_text(LOCAL + '[s3]\nmultipart_expiry = "12h"\n')
    assert local.json("uploads list", "--expired")["s3_uploads"][0]["key"] == "recent"
    assert "removed 0 expired native uploads, 1 stale S3" in (
        local.run("uploads remove-expired").stdout
    )
    local.config.write_text(LOCAL + '[s3]\nmultipart_expiry = "soon"\n')
    bad = local.run("uploads list")
    assert bad.exit_code == 2 and "[s3] multipart_expiry" in bad.stderr


# -- check ----------------------------------------------------------------------


def test_check_clean(local):
    local.put(b"a" * 5000, b"b")
    doc = local.json("check")
    assert doc["clean"] and (doc["checked"], doc["ok"]) == (2, 2)
    assert doc["bytes_read"] == 5001
    assert "check done" in local.run("check").stdout


def test_check_finds_and_quarantines_corrupt_and_missing_blobs(local):
    good, gone = local.put(b"fine", b"vanishing bytes")
    part0, part1 = b"0" * 1024, b"rotten part"
    whole = local.composite(part0, part1)
    with local.store() as store:
        corrupt_shard(
            store.backend.origin, store.stat(hash_of(part1)).name, 0, offset=3
        )
        delete_shard(store.backend.origin, store.stat(gone).name, 0)

    found = local.run("check")
    assert found.exit_code == 1
    assert "PROBLEMS FOUND" in found.stdout
    assert f"missing: {gone}" in found.stdout
    assert f"corrupt: {hash_of(part1)}" in found.stdout
    assert f"(part of {whole})" in found.stdout
    doc = local.json("check", code=1)
    assert (doc["corrupt"], doc["missing"], doc["ok"]) == (1, 1, 2)
    bad = {p["hash"]: p for p in doc["problems"]}
    assert bad[hash_of(part1)]["composites"] == [whole]
    assert not any(p["quarantined"] for p in doc["problems"])

    quarantined = local.json("check", "--quarantine", code=1)
    assert sorted(quarantined["quarantined"]) == sorted([gone, hash_of(part1)])
    with local.store() as store:
        assert not store.exists(gone) and not store.exists(hash_of(part1))
        assert store.exists(good) and store.exists(whole)  # composites untouched
        with pytest.raises(BlobNotFound), store.open(whole) as f:
            f.read()
    stats = local.json("stats")
    assert stats["quarantined"]["total"] == 2
    assert {e["hash"] for e in stats["quarantined"]["blobs"]} == {
        gone,
        hash_of(part1),
    }
    assert stats["check"]["quarantined"] == 2
    assert "corrupt: " in local.run("stats").stdout

    # A client puts the content again: it is served again, with fresh bytes.
    local.put(b"vanishing bytes", part1)
    assert local.read(whole) == part0 + part1
    assert local.json("check")["clean"]


def test_check_one_blob(local):
    part0, part1 = b"0" * 1024, b"tail"
    whole = local.composite(part0, part1)
    (other,) = local.put(b"not checked")
    with local.store() as store:
        delete_shard(store.backend.origin, store.stat(other).name, 0)
    doc = local.json("check", "--hash", whole)
    assert doc["clean"] and doc["checked"] == 2 and doc["total"] == 2
    assert local.json("check", "--hash", other, code=1)["missing"] == 1
    bad = local.run("check", "--hash", "nope")
    assert bad.exit_code == 2 and "hash" in bad.stderr
    unknown = local.run("check", "--hash", hash_of(b"never stored"))
    assert unknown.exit_code == 1 and "not found" in unknown.stderr


def test_check_heals_an_erasure_blob_before_calling_it_corrupt(erasure):
    data = os.urandom(300_000)
    (h,) = erasure.put(data)
    name = name_of(erasure, h)
    with erasure.store() as store:
        corrupt_shard(store.backend.origin, name, 0, offset=1000)  # a data shard
    doc = erasure.json("check")
    assert doc["clean"] and doc["healed"] == [h]
    with erasure.store() as store:
        report = store.backend.heal(name)
        assert (report.healthy, report.healed) == (1, 0)  # every shard good again
    assert erasure.read(h) == data

    # Beyond the parity: corrupt, and quarantined when asked.
    with erasure.store() as store:
        for shard in range(3):
            corrupt_shard(store.backend.origin, name, shard, offset=10)
    doc = erasure.json("check", "--quarantine", code=1)
    assert doc["corrupt"] == 1 and doc["quarantined"] == [h]


def test_check_never_quarantines_what_offline_drives_may_hold(tmp_path):
    site = Site(tmp_path, erasure_config(tmp_path))
    (h,) = site.put(b"held by drives that went away" * 100)
    with site.store() as store:
        name = store.stat(h).name
        for shard in range(3):  # more drives than the parity covers
            break_drive(shard_drive(store.backend, name, shard), "removed")
        report = check(store, quarantine=True)
        assert [p.kind for p in report.problems] == ["unreadable"]
        assert report.quarantined == [] and store.exists(h)
        assert "not proof of damage" in report.problems[0].kept


# -- heal ------------------------------------------------------------------------


def test_heal_rebuilds_a_removed_shard(erasure):
    data = os.urandom(200_000)
    (h,) = erasure.put(data)
    (other,) = erasure.put(b"healthy")
    name = name_of(erasure, h)
    with erasure.store() as store:
        delete_shard(store.backend.origin, name, 4)
        shard = shard_drive(store.backend.origin, name, 4).shard_path(name)
    assert not shard.exists()

    result = erasure.run("heal")
    assert result.exit_code == 0, result.output
    assert "all whole" in result.stdout
    assert re.search(r"^  healed +1 \(1 shards rebuilt\)$", result.stdout, re.M)
    assert shard.exists()
    doc = erasure.json("heal")
    assert doc["ok"] and (doc["healthy"], doc["healed"], doc["total"]) == (2, 0, 2)
    assert erasure.read(h) == data

    with erasure.store() as store:
        corrupt_shard(store.backend.origin, name, 1, offset=50)
    doc = erasure.json("heal", "--hash", h)
    assert (doc["scanned"], doc["healed"], doc["shards_rebuilt"]) == (1, 1, 1)
    assert erasure.json("heal", "--hash", other)["healthy"] == 1


def test_heal_a_composite_heals_its_parts(erasure):
    whole = erasure.composite(b"a" * 1024, b"b" * 1024, b"c")
    with erasure.store() as store:
        for part in (b"a" * 1024, b"c"):
            delete_shard(store.backend.origin, store.stat(hash_of(part)).name, 0)
    doc = erasure.json("heal", "--hash", whole)
    assert (doc["total"], doc["scanned"], doc["healed"], doc["healthy"]) == (3, 3, 2, 1)


def test_heal_reports_unrecoverable_blobs_by_hash(erasure):
    (h,) = erasure.put(b"too far gone" * 1000)
    name = name_of(erasure, h)
    with erasure.store() as store:
        for shard in range(3):
            delete_shard(store.backend.origin, name, shard)
    result = erasure.run("heal")
    assert result.exit_code == 1
    assert "problems remain" in result.stdout
    assert f"unrecoverable: blob {h} ({name})" in result.stdout
    doc = erasure.json("heal", code=1)
    assert doc["unrecoverable"] == [name] and doc["hashes"] == {name: h}
    assert erasure.json("stats")["heal"]["unrecoverable"] == 1


def test_heal_errors(local, erasure):
    no_parity = local.run("heal")
    assert no_parity.exit_code == 2
    assert "backend local has no redundancy to heal" in no_parity.stderr
    assert erasure.run("heal", "--hash", "0" * 10).exit_code == 2
    unknown = erasure.run("heal", "--hash", hash_of(b"never stored"))
    assert unknown.exit_code == 1 and "not found" in unknown.stderr


# -- terminals -----------------------------------------------------------------


def test_progress_bar_and_text_logs_only_on_a_terminal(local):
    import fcntl
    import pty
    import struct
    import subprocess
    import sys
    import termios

    local.put(*(b"blob %d" % i for i in range(5)))
    command = [str(Path(sys.executable).parent / "blobstore"), "check"]
    command += ["--config", str(local.config), "--data-dir", str(local.root / "data")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOBSTORE_")}
    master, slave = pty.openpty()
    # A real terminal has a size; tqdm draws nothing in zero columns.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=slave, env=env
    ) as child:
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        out, _ = child.communicate(timeout=60)
    os.close(master)
    terminal = b"".join(chunks).decode(errors="replace")
    assert child.returncode == 0, terminal
    assert re.search(r"check: 100%\|.*\| 5/5", terminal), terminal
    assert "check done" in out.decode()

    # Not a terminal: no bar, and every log line is JSON.
    piped = subprocess.run(command, capture_output=True, env=env, check=True)
    assert b"100%" not in piped.stderr
    assert all(json.loads(line) for line in piped.stderr.splitlines())
