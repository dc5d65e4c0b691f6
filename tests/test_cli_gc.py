"""``blobstore gc`` as operators run it: summaries, exit codes, ref sources
that fail, and two passes started at once (real processes)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from blobstore.clock import utcnow
from blobstore.collector import last_runs
from blobstore.config import build_store
from blobstore.config import load_settings
from blobstore.records import S3PartRecord
from blobstore.records import S3UploadRecord
from blobstore.s3.rules import new_s3_upload_id
from blobstore_api.cli import main

HOURS_AGO = utcnow() - timedelta(hours=2)


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A data directory and a config file for it (written by each test)."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("BLOBSTORE_"):
            monkeypatch.delenv(name)
    config = tmp_path / "blobstore.toml"
    config.write_text("[backend]\nfsync = false\n")
    return tmp_path


def open_store(site: Path):
    return build_store(
        load_settings(site / "blobstore.toml", data_dir=site / "data", env={})
    )


def put_old(site: Path, *contents: bytes) -> list[str]:
    """Store *contents* as blobs put two hours ago, referenced by nothing."""
    with open_store(site) as store:
        return [store.put(io.BytesIO(c), now=HOURS_AGO).hash for c in contents]


def exists(site: Path, h: str) -> bool:
    with open_store(site) as store:
        return store.exists(h)


def gc(site: Path, *args: str):
    return CliRunner().invoke(
        main,
        ["gc", "--config", str(site / "blobstore.toml"), "--data-dir", "data", *args],
    )


def test_summary_and_json(site):
    keep, drop = put_old(site, b"kept by a ref", b"nobody's")
    with open_store(site) as store:
        store.put_ref("pinned", keep)
    dry = gc(site, "--grace", "0", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry run (nothing removed)" in dry.stdout
    assert exists(site, drop)

    result = gc(site, "--grace", "0")
    assert result.exit_code == 0, result.output
    assert re.search(r"^  deleted +1$", result.stdout, re.M)
    assert re.search(r"^  referenced +1$", result.stdout, re.M)
    assert re.search(r"^  bytes reclaimed +8 B \(8\)$", result.stdout, re.M)
    assert not exists(site, drop) and exists(site, keep)

    again = gc(site, "--grace", "0", "--json")
    doc = json.loads(again.stdout)
    assert doc["status"] == "done" and doc["deleted"] == 0 and doc["referenced"] == 1
    assert doc["grace_seconds"] == 0
    with open_store(site) as store:
        assert last_runs(store)["last_run"]["scanned"] == 1


def test_grace_keeps_recent_blobs(site):
    (old,) = put_old(site, b"old garbage")
    with open_store(site) as store:
        young = store.put(io.BytesIO(b"young garbage")).hash
    # From the config...
    (site / "blobstore.toml").write_text(
        '[backend]\nfsync = false\n[gc]\ngrace = "1h"\n'
    )
    assert gc(site, "--json").exit_code == 0
    assert not exists(site, old) and exists(site, young)
    # ...or the command line, which wins.
    assert json.loads(gc(site, "--grace", "0", "--json").stdout)["deleted"] == 1
    assert not exists(site, young)


def test_bad_grace_is_a_usage_error(site):
    result = gc(site, "--grace", "soon")
    assert result.exit_code == 2
    assert "[gc] grace (from command line) must be a duration" in result.stderr


def test_stale_s3_uploads_are_removed_even_with_s3_disabled(site):
    # S3 is off now, but the catalog still holds an upload from when it was
    # on: nobody can complete it, so only GC can release its parts.
    (part,) = put_old(site, b"a part of an abandoned S3 upload")
    with open_store(site) as store:
        old = utcnow() - timedelta(days=8)
        upload = S3UploadRecord(new_s3_upload_id(old), "bkt", "key", old, "alice")
        store.catalog.create_s3_upload(upload)
        store.catalog.put_s3_part(S3PartRecord(upload.id, 1, part, 32, "0" * 32, old))
    doc = json.loads(gc(site, "--grace", "0", "--json").stdout)
    assert doc["s3_uploads_expired"] == 1 and doc["deleted"] == 1
    assert not exists(site, part)


def test_failing_ref_source_deletes_nothing_and_is_named(site):
    missing = site / "artifact-refs.txt"
    (site / "blobstore.toml").write_text(
        "[backend]\nfsync = false\n"
        f'[[gc.ref_sources]]\ntype = "file"\npath = "{missing}"\n'
    )
    hashes = put_old(site, b"maybe referenced", b"maybe not")
    with open_store(site) as store:
        expired = store.new_upload(utcnow() - timedelta(hours=1))

    result = gc(site, "--grace", "0")
    assert result.exit_code == 1
    assert f"ref source file {missing} failed" in result.stderr
    assert (
        "FileNotFoundError" in result.stderr and "nothing was deleted" in result.stderr
    )
    assert all(exists(site, h) for h in hashes)
    with open_store(site) as store:
        assert store.upload_info(expired)  # not even expired uploads went
        assert "ref source file" in last_runs(store)["last_failure"]["error"]

    as_json = gc(site, "--grace", "0", "--json")
    assert as_json.exit_code == 1
    doc = json.loads(as_json.stdout)
    assert doc["status"] == "failed" and f"file {missing}" in doc["error"]
    # JSON log lines name it too.
    logs = [json.loads(line) for line in as_json.stderr.splitlines()]
    assert any(f"file {missing}" in line["message"] for line in logs)

    missing.write_text(f"# the artifact store's blobs\n{hashes[0]}\n")
    assert gc(site, "--grace", "0").exit_code == 0
    assert exists(site, hashes[0]) and not exists(site, hashes[1])


def test_lease_held_exits_75(site):
    with open_store(site) as store:
        assert store.catalog.acquire_lease(
            "gc", "another-node", timedelta(minutes=5), utcnow()
        )
    result = gc(site, "--json")
    assert result.exit_code == 75
    assert json.loads(result.stdout)["status"] == "busy"
    plain = gc(site)
    assert plain.exit_code == 75
    assert "another garbage collection is running" in plain.stderr


def _blobstore(site: Path, *args: str) -> list[str]:
    return [
        str(Path(sys.executable).parent / "blobstore"),
        *args,
        "--config",
        str(site / "blobstore.toml"),
        "--data-dir",
        str(site / "data"),
    ]


def _open_for_writing(fifo: Path, reader: subprocess.Popen):
    """Open *fifo* for writing: returns once *reader* opened it to read.
    Fails (instead of hanging) if *reader* exits first."""
    box: dict[str, object] = {}
    opener = threading.Thread(target=lambda: box.update(f=open(fifo, "w")))  # noqa: SIM115
    opener.start()
    while opener.is_alive():
        opener.join(0.1)
        if reader.poll() is not None and opener.is_alive():
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # unblock it
            opener.join()
            box["f"].close()  # type: ignore[attr-defined]
            out, err = reader.communicate()
            pytest.fail(f"gc exited {reader.returncode} first:\n{out}\n{err}")
    return box["f"]


def test_two_concurrent_passes_one_runs_the_other_exits_75(site):
    # The first pass reads its external refs from a FIFO the test holds, so
    # it is certainly inside its pass (holding the lease) until we let go.
    fifo = site / "refs.fifo"
    os.mkfifo(fifo)
    (site / "blobstore.toml").write_text(
        f'[backend]\nfsync = false\n[[gc.ref_sources]]\ntype = "file"\npath = "{fifo}"\n'
    )
    keep, drop = put_old(site, b"the artifact store uses this", b"and not this")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOBSTORE_")}
    first = subprocess.Popen(
        _blobstore(site, "gc", "--grace", "0", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        refs = _open_for_writing(fifo, first)
        second = subprocess.run(
            _blobstore(site, "gc", "--grace", "0", "--json"),
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert second.returncode == 75, second.stderr
        assert json.loads(second.stdout)["status"] == "busy"
        with refs:
            refs.write(keep + "\n")
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    assert json.loads(out)["deleted"] == 1
    assert exists(site, keep) and not exists(site, drop)
