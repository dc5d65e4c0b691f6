"""`blobstore serve` checks every section before anything starts: a mistake
is one `config error` line and exit 2, before gunicorn binds (nothing
listens, no worker crashes in a loop); what it serves is said at start."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

BLOBSTORE = Path(sys.executable).parent / "blobstore"
CREDS = '[[s3.credentials]]\naccess_key = "AKID"\nsecret_key = "secret-key-123"\n'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(tmp_path: Path, config: str) -> tuple[subprocess.CompletedProcess, int]:
    path = tmp_path / "blobstore.toml"
    path.write_text(config)
    port = free_port()
    result = subprocess.run(
        [
            str(BLOBSTORE),
            "serve",
            "--config",
            str(path),
            "--data-dir",
            str(tmp_path / "data"),
            "--bind",
            f"127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, port


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[s3]\nenabled = true\n", "config error: [s3] needs at least one"),
        (
            '[s3]\nenabled = true\n[[s3.credentials]]\naccess_key = "AKID"\nsecret_key = ""\n',
            "config error: [s3] credentials[0].secret_key must be a non-empty string",
        ),
        (
            '[s3]\nenabled = true\nmultipart_expiry = "soon"\n' + CREDS,
            "config error: [s3] multipart_expiry must be a duration",
        ),
        ("[s3]\nenable = true\n", "config error: [s3] enable is not a known key"),
        (
            '[s3]\nenabled = true\nregoin = "eu"\n' + CREDS,
            "config error: [s3] regoin is not a known key",
        ),
        (
            '[s3]\nenabled = true\n[[s3.credentials]]\naccess_key = "A"\nsecret_key = "s"\nsecrte = "x"\n',
            "config error: [s3] credentials[0] secrte is not a known key",
        ),
        ("[cache]\nenabled = true\n", "config error: [cache] path: required"),
        (
            '[cache]\nenabled = true\npath = "c"\nmax_size = "lots"\n',
            "config error: [cache] max_size: must be a size",
        ),
        ("[cache]\nenable = true\n", "config error: [cache] enable"),
        (
            '[backend]\ntype = "local"\npth = "x"\n',
            'config error: [backend] pth is not a known key (type = "local")',
        ),
    ],
)
def test_a_mistake_is_one_line_and_exit_2_before_binding(tmp_path, config, message):
    result, port = serve(tmp_path, config)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(f"blobstore: {message}"), lines[0]
    assert "Traceback" not in result.stderr
    assert "Booting worker" not in result.stderr  # gunicorn never started
    with socket.socket() as s:  # and nothing listens
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_the_start_says_what_is_served_and_warns_of_open_access(server_factory):
    server = server_factory(config="[s3]\nenabled = true\n" + CREDS)
    server.start()
    log = server.log()
    assert "blobstore serving the native API and S3 on 127.0.0.1:" in log
    assert "no [auth] tokens are configured: every client has admin access" in log


def test_a_section_with_settings_but_not_enabled_is_warned_of(server_factory):
    server = server_factory(config='[s3]\nregion = "eu-west-1"\n')
    server.start()
    log = server.log()
    assert "blobstore serving the native API on" in log
    assert "[s3] has settings but no 'enabled = true': it is off" in log


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm here")
def test_per_request_files_are_kept_in_memory(server):
    # gunicorn's heartbeat file (a utime several times a request) and the
    # metrics' mmapped counters: on a disk they wait behind a put's fsync.
    worker = server.worker_pids()[0]
    environ = dict(
        item.split("=", 1)
        for item in Path(f"/proc/{worker}/environ").read_text().split("\0")
        if "=" in item
    )
    metrics_dir = Path(environ["PROMETHEUS_MULTIPROC_DIR"])
    assert metrics_dir.parent == Path("/dev/shm") and metrics_dir.is_dir()
    open_files = [str(fd.readlink()) for fd in Path(f"/proc/{worker}/fd").iterdir()]
    heartbeat = [f for f in open_files if "wgunicorn-" in f]
    assert heartbeat and all(f.startswith("/dev/shm/") for f in heartbeat)
    server.stop()
    assert not metrics_dir.exists()  # serve removes what it made
