"""The services under test, started by the benchmark on 127.0.0.1.

* :class:`Blobstore`: ``blobstore serve`` in a temporary directory, with a
  given TOML configuration (local backend, erasure-posix 4+2, S3 enabled),
  started and stopped by PID through the end-to-end tests'
  :class:`~tests.e2e.server.ServerProcess`.
* :class:`Swift`: the real single-node Swift the Swift tests use
  (:class:`~tests.swift_server.SwiftServer`), with its devices on the same
  disk as the blobstore's data so both pay the same fsyncs.
* :class:`PeakRss`: the peak resident memory of a service's processes
  (master and workers) during a block, from ``/proc``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import threading
from pathlib import Path
from typing import Any

from bench.clients import Endpoint
from tests.e2e.server import ServerProcess
from tests.swift_server import SwiftServer

__all__ = ["S3_ACCESS_KEY", "S3_SECRET_KEY", "Blobstore", "PeakRss", "Swift"]

S3_ACCESS_KEY = "AKIDBLOBSTOREBENCH"
S3_SECRET_KEY = "blobstore-bench-secret"
S3_CONFIG = f"""
[s3]
enabled = true
region = "us-east-1"
[[s3.credentials]]
access_key = "{S3_ACCESS_KEY}"
secret_key = "{S3_SECRET_KEY}"
"""


class Blobstore:
    """One ``blobstore serve`` under *root* with the TOML *config*."""

    def __init__(
        self, root: Path, config: str = "", *, workers: int = 2, threads: int = 8
    ) -> None:
        self.server = ServerProcess(
            root, config=config, workers=workers, threads=threads
        )

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    @property
    def url(self) -> str:
        return self.server.url

    def endpoint(self, prefix: str = "/v1/blobs") -> Endpoint:
        assert self.server.port is not None
        return Endpoint("127.0.0.1", self.server.port, prefix)

    def pids(self) -> list[int]:
        return [self.server.pid, *self.server.worker_pids()]

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the service's processes (master and
        workers) have used so far: what a request cost the server, apart
        from the client sharing the machine."""
        return sum(_process_cpu(pid) for pid in self.pids())

    @staticmethod
    def local_config() -> str:
        return ""  # the embedded default: SQLite catalog, local backend

    @staticmethod
    def erasure_config(data_dir: Path, drives: int = 6, parity: int = 2) -> str:
        paths = ", ".join(f'"{data_dir}/drive{i}"' for i in range(drives))
        return (
            f'[backend]\ntype = "erasure-posix"\n'
            f"drives = [{paths}]\nparity = {parity}\n"
        )

    @staticmethod
    def s3_config() -> str:
        return S3_CONFIG


def _process_cpu(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0  # exited (a worker replaced): its time is gone with it
    fields = stat.rsplit(")", 1)[1].split()  # after the command name
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Swift:
    """The peer: a real Swift (proxy with tempauth and s3api) on loopback."""

    def __init__(self, base_dir: Path, *, proxy_workers: int = 2) -> None:
        self.server = SwiftServer(proxy_workers=proxy_workers, base_dir=base_dir)
        self.token = ""

    def start(self) -> None:
        self.server.start()
        self.token = self._login()

    def stop(self) -> None:
        self.server.stop()

    def _login(self) -> str:
        port = self.server.ports["proxy"]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request(
                "GET",
                "/auth/v1.0",
                headers={
                    "X-Auth-User": self.server.user,
                    "X-Auth-Key": self.server.key,
                },
            )
            response = conn.getresponse()
            response.read()
            token = response.getheader("X-Auth-Token")
        finally:
            conn.close()
        if response.status != 200 or not token:
            raise RuntimeError(f"Swift tempauth login failed: {response.status}")
        return token

    def endpoint(self, container: str) -> Endpoint:
        return Endpoint(
            "127.0.0.1",
            self.server.ports["proxy"],
            f"/v1/{self.server.account}/{container}",
            (("X-Auth-Token", self.token),),
        )

    def create_container(self, container: str) -> None:
        ep = self.endpoint(container)
        conn = ep.connect()
        try:
            conn.request("PUT", ep.prefix, headers=dict(ep.headers))
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
        if response.status not in (201, 202):
            raise RuntimeError(
                f"cannot create container {container}: {response.status}"
            )

    def pids(self) -> list[int]:
        """The proxy and its workers, and the storage servers."""
        return self.server.pids()


# -- memory -----------------------------------------------------------------------


def _status(pid: int) -> dict[str, int]:
    values = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values


class PeakRss:
    """Peak RSS of *pids* during a ``with`` block, and its growth.

    Each process's high-water mark is reset first (``clear_refs`` 5), so the
    peak is exact however short a spike was; the growth is the sum of the
    peaks minus the sum of the resident sizes before the block (an upper
    bound on the growth of the total). Where the reset is not allowed it
    falls back to sampling the total every 10 ms.
    """

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.before = 0
        self.peak = 0
        self._hwm = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _total(self, key: str) -> int:
        return sum(_status(pid).get(key, 0) for pid in self.pids)

    def __enter__(self) -> PeakRss:
        self.before = self._total("VmRSS")
        for pid in self.pids:
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                self._hwm = False
        if not self._hwm:
            self.peak = self.before
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._total("VmRSS"))

    def __exit__(self, *exc: Any) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        else:
            self.peak = self._total("VmHWM")

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.before)
