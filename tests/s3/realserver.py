"""A real gunicorn (blobstore's gthread worker) serving the S3 façade on 127.0.0.1.

The listening socket is bound here, on a free port, and handed to gunicorn
as ``fd://N``: no port race, and requests made before the workers are up
simply wait in the backlog. Stopped by PID.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore.records import BlobTotals

__all__ = ["S3Server"]

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class S3Server:
    """A running server: where it listens and the credentials it accepts."""

    endpoint_url: str
    access_key: str
    secret_key: str
    data_dir: Path
    process: subprocess.Popen
    region: str = "us-east-1"

    @classmethod
    def start(
        cls,
        data_dir: Path,
        *,
        access_key: str = "AKIDBLOBSTORETEST",
        secret_key: str = "blobstore-test-secret/key+1",
        workers: int = 2,
        threads: int = 8,
    ) -> S3Server:
        data_dir.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        port = sock.getsockname()[1]
        config = {
            "enabled": True,
            "region": "us-east-1",
            "credentials": [
                {"access_key": access_key, "secret_key": secret_key},
                {"access_key": "AKIDOTHEROWNER", "secret_key": "other-secret"},
            ],
        }
        env = dict(
            os.environ,
            BLOBSTORE_TEST_DATA=str(data_dir),
            BLOBSTORE_TEST_S3=json.dumps(config),
        )
        log = open(data_dir / "gunicorn.log", "wb")  # noqa: SIM115 - owned by the child
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--worker-class",
                "blobstore_api.worker.Worker",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--bind",
                f"fd://{sock.fileno()}",
                "--timeout",
                "120",
                "tests.s3.server:app",
            ],
            cwd=ROOT,
            env=env,
            pass_fds=[sock.fileno()],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        sock.close()
        log.close()
        server = cls(
            f"http://127.0.0.1:{port}", access_key, secret_key, data_dir, process
        )
        server._wait_ready(port)
        return server

    def _wait_ready(self, port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log()}")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("GET", "/")
                if conn.getresponse().getheader("x-amz-request-id"):
                    return
            except (OSError, http.client.HTTPException):
                # Accepted by the backlog but the worker is still booting.
                time.sleep(0.1)
            finally:
                conn.close()
        self.stop()
        raise RuntimeError(f"gunicorn did not answer:\n{self.log()}")

    def log(self) -> str:
        path = self.data_dir / "gunicorn.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stats(self) -> BlobTotals:
        """What the store holds (read from its catalog, as ``Store.stats``)."""
        catalog = SQLiteCatalog(self.data_dir / "catalog.db")
        try:
            return catalog.blob_totals()
        finally:
            catalog.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
