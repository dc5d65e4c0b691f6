"""The README's curl, boto3 and aws cli examples, run as written against a
real `blobstore serve` (only the address is changed to the test server's)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.server import ServerProcess
from tests.readme_blocks import README
from tests.readme_blocks import readme_blocks
from tests.readme_blocks import with_endpoint

S3_CONFIG = """
[s3]
enabled = true
region = "us-east-1"
[[s3.credentials]]
access_key = "AKIAEXAMPLE"
secret_key = "change-me"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp("readme"), config=S3_CONFIG) as srv:
        yield srv


def run_shell(code: str, cwd: Path) -> str:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # aws from the venv
    out = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, f"stdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    return out.stdout


def test_curl_examples(server, tmp_path):
    out = run_shell(with_endpoint(readme_blocks()["curl"], server.url), tmp_path)
    assert "hello, blobs" in out
    assert "304" in out


def test_boto3_example(server, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = with_endpoint(readme_blocks()["boto3"], server.url)
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out.strip() == "1"


def test_aws_cli_example(server, tmp_path):
    out = run_shell(with_endpoint(readme_blocks()["awscli"], server.url), tmp_path)
    assert "releases/1.0/build.tar.gz" in out
    assert "delete: s3://artifacts/site/index.html" in out


def test_client_example(server, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = with_endpoint(readme_blocks()["client"], server.url)
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "resume with" in out
    assert "missing, as with a Store" in out


def test_cli_example(server, tmp_path):
    code = with_endpoint(readme_blocks()["cli"], server.url)
    code = code.replace(
        ".venv/bin/blobstore", str(Path(sys.executable).parent / "blobstore")
    )
    out = run_shell(code, tmp_path)
    assert "builds/42" in out
