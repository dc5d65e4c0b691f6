"""The aws cli and s3cmd against the real server, as their users run them."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.s3.realserver import S3Server

MiB = 1024 * 1024
BIN = Path(sys.executable).parent


def run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture
def aws(s3_server: S3Server, tmp_path: Path):
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID=s3_server.access_key,
        AWS_SECRET_ACCESS_KEY=s3_server.secret_key,
        AWS_DEFAULT_REGION=s3_server.region,
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        HOME=str(tmp_path),
    )

    def aws(*args: str) -> str:
        return run(
            [
                sys.executable,
                "-m",
                "awscli",
                "--endpoint-url",
                s3_server.endpoint_url,
                *args,
            ],
            env,
            tmp_path,
        )

    return aws


def test_aws_cli_cp_sync_ls_rm(aws, s3, tmp_path):
    aws("s3", "mb", "s3://cli-bucket")
    big = random.Random(1).randbytes(20 * MiB)  # above the 8 MiB threshold
    (tmp_path / "big.bin").write_bytes(big)
    aws("s3", "cp", str(tmp_path / "big.bin"), "s3://cli-bucket/dir/big.bin")
    assert s3.head_object(Bucket="cli-bucket", Key="dir/big.bin")["ETag"].endswith(
        '-3"'
    )
    aws("s3", "cp", "s3://cli-bucket/dir/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == big

    tree = tmp_path / "tree"
    for name in ("a.txt", "sub/b.txt", "sub/deeper/c d.txt", "ünï.txt"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(f"content of {name}")
    aws("s3", "sync", str(tree), "s3://cli-bucket/tree")
    listing = aws("s3", "ls", "--recursive", "s3://cli-bucket/tree/")
    for name in ("a.txt", "sub/b.txt", "sub/deeper/c d.txt", "ünï.txt"):
        assert f"tree/{name}" in listing
    top = aws("s3", "ls", "s3://cli-bucket/tree/")
    assert "PRE sub/" in top
    # A second sync has nothing to do; a changed file is uploaded again.
    assert aws("s3", "sync", str(tree), "s3://cli-bucket/tree") == ""
    (tree / "a.txt").write_text("changed, and longer than before")
    assert "a.txt" in aws("s3", "sync", str(tree), "s3://cli-bucket/tree")
    aws("s3", "sync", "s3://cli-bucket/tree", str(tmp_path / "down"))
    assert (tmp_path / "down" / "sub/deeper/c d.txt").read_text() == (
        "content of sub/deeper/c d.txt"
    )
    aws("s3", "cp", "s3://cli-bucket/tree/a.txt", "s3://cli-bucket/copied.txt")
    assert s3.get_object(Bucket="cli-bucket", Key="copied.txt")["Body"].read() == (
        b"changed, and longer than before"
    )
    aws("s3", "rm", "--recursive", "s3://cli-bucket/")
    assert s3.list_objects_v2(Bucket="cli-bucket")["KeyCount"] == 0
    aws("s3", "rb", "s3://cli-bucket")


def test_aws_cli_s3api_and_presign(aws, s3, tmp_path):
    aws("s3api", "create-bucket", "--bucket", "api-bucket")
    (tmp_path / "f").write_bytes(b"s3api body")
    aws(
        "s3api",
        "put-object",
        "--bucket",
        "api-bucket",
        "--key",
        "k",
        "--body",
        str(tmp_path / "f"),
    )
    assert '"ContentLength": 10' in aws(
        "s3api", "head-object", "--bucket", "api-bucket", "--key", "k"
    )
    url = aws("s3", "presign", "s3://api-bucket/k", "--expires-in", "60").strip()
    assert urlsplit(url).path == "/api-bucket/k"


@pytest.fixture
def s3cmd(s3_server: S3Server, tmp_path: Path):
    host = urlsplit(s3_server.endpoint_url).netloc
    config = tmp_path / "s3cfg"
    config.write_text(
        "[default]\n"
        f"access_key = {s3_server.access_key}\n"
        f"secret_key = {s3_server.secret_key}\n"
        f"host_base = {host}\n"
        f"host_bucket = {host}\n"
        "use_https = False\n"
        "signature_v2 = False\n"
        f"bucket_location = {s3_server.region}\n"
    )
    env = dict(os.environ, HOME=str(tmp_path))

    def s3cmd(*args: str) -> str:
        return run(
            [sys.executable, str(BIN / "s3cmd"), "-c", str(config), *args],
            env,
            tmp_path,
        )

    return s3cmd


def test_s3cmd(s3cmd, s3, tmp_path):
    s3cmd("mb", "s3://s3cmd-bucket")
    (tmp_path / "small.txt").write_text("small file")
    s3cmd("put", str(tmp_path / "small.txt"), "s3://s3cmd-bucket/small.txt")
    big = random.Random(2).randbytes(12 * MiB)
    (tmp_path / "big.bin").write_bytes(big)
    s3cmd(
        "put",
        "--multipart-chunk-size-mb=5",
        str(tmp_path / "big.bin"),
        "s3://s3cmd-bucket/big.bin",
    )
    assert s3.head_object(Bucket="s3cmd-bucket", Key="big.bin")["ETag"].endswith('-3"')
    listing = s3cmd("ls", "s3://s3cmd-bucket")
    assert "s3://s3cmd-bucket/small.txt" in listing
    assert "s3://s3cmd-bucket/big.bin" in listing
    s3cmd("get", "s3://s3cmd-bucket/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == big
    info = s3cmd("info", "s3://s3cmd-bucket/small.txt")
    assert "File size: 10" in info
    s3cmd("cp", "s3://s3cmd-bucket/small.txt", "s3://s3cmd-bucket/copy.txt")
    s3cmd("del", "s3://s3cmd-bucket/small.txt", "s3://s3cmd-bucket/copy.txt")
    s3cmd("del", "s3://s3cmd-bucket/big.bin")
    s3cmd("rb", "s3://s3cmd-bucket")
    assert "s3cmd-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
