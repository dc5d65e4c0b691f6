"""End to end: a real service takes blobs through the native API and S3,
then ``blobstore gc`` -- a separate process on the same configuration --
removes exactly the unreferenced bytes from the backend's directory."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import boto3
import requests

from blobstore.hashing import hash_bytes
from tests.e2e.server import ServerProcess

ACCESS_KEY = "AKIDGCENDTOEND"
SECRET_KEY = "gc-end-to-end-secret"

CONFIG = f"""
[backend]
fsync = false

[s3]
enabled = true
region = "us-east-1"

[[s3.credentials]]
access_key = "{ACCESS_KEY}"
secret_key = "{SECRET_KEY}"
"""


def blob(label: str) -> bytes:
    """Distinctive content: found byte for byte in the backend's files."""
    return (f"{label}:".encode() + os.urandom(32)) * 2000


def files_holding(root: Path, content: bytes) -> list[Path]:
    """Files under *root* whose bytes are exactly *content* (with one drive
    and no parity, a blob's shard file is the blob)."""
    return [
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.stat().st_size == len(content)
        and p.read_bytes() == content
    ]


def blobstore(server: ServerProcess, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        server.cli(*args), capture_output=True, text=True, env=server.cli_env(),
        timeout=120, check=False,
    )  # fmt: skip


def test_gc_removes_unreferenced_bytes_and_keeps_the_rest(server_factory):
    server = server_factory(config=CONFIG)
    server.start()
    url = server.url
    pinned, loose, kept_obj, deleted_obj = (
        blob(n) for n in ("pinned", "loose", "kept-object", "deleted-object")
    )
    for data in (pinned, loose):
        put = requests.put(f"{url}/v1/blobs/{hash_bytes(data)}", data=data, timeout=30)
        assert put.status_code == 201, put.text
    ref = requests.put(
        f"{url}/v1/refs/releases/1.0", json={"hash": hash_bytes(pinned)}, timeout=30
    )
    assert ref.status_code == 201
    s3 = boto3.session.Session().client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="kept", Body=kept_obj)
    s3.put_object(Bucket="artifacts", Key="gone", Body=deleted_obj)
    s3.delete_object(Bucket="artifacts", Key="gone")
    blobs_dir = server.data_dir / "blobs"
    for data in (pinned, loose, kept_obj, deleted_obj):
        assert len(files_holding(blobs_dir, data)) == 1

    result = blobstore(server, "gc", "--grace", "0", "--json")

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "done"
    assert summary["deleted"] == 2
    assert summary["reclaimed_bytes"] == len(loose) + len(deleted_obj)
    assert summary["referenced"] == 2
    # The logs are JSON lines on stderr (not a terminal), the pass among them.
    logs = [json.loads(line) for line in result.stderr.splitlines()]
    assert any(line["message"] == "gc pass done" for line in logs)

    assert files_holding(blobs_dir, loose) == []
    assert files_holding(blobs_dir, deleted_obj) == []
    got = requests.get(f"{url}/v1/blobs/{hash_bytes(pinned)}", timeout=30)
    assert got.status_code == 200 and got.content == pinned
    assert s3.get_object(Bucket="artifacts", Key="kept")["Body"].read() == kept_obj
    gone = requests.get(f"{url}/v1/blobs/{hash_bytes(loose)}", timeout=30)
    assert gone.status_code == 404

    # Every worker exports the pass, read from the catalog at scrape time.
    metrics = requests.get(f"{url}/metrics", timeout=30).text
    assert "blobstore_gc_last_deleted_blobs 2.0" in metrics
    assert (
        f"blobstore_gc_last_reclaimed_bytes {float(len(loose) + len(deleted_obj))}"
        in (metrics)
    )
    assert "blobstore_gc_last_success_timestamp_seconds" in metrics
