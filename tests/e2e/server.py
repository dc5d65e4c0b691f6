"""A real blobstore service in a subprocess, for end-to-end tests.

::

    with ServerProcess(tmp_path, config='[limits]\\nmin_part_size = "1MiB"\\n') as srv:
        requests.get(f"{srv.url}/healthz")
        srv.restart()

It runs ``blobstore serve`` (or, with ``via_gunicorn_conf=True``, plain
``gunicorn -c config/gunicorn.conf.py``) on 127.0.0.1 with a data directory
under the given root. The first start binds port 0 and reads the port the
server chose from its log, so there is no race for a free port; restarts reuse
it. The process is stopped by its PID (SIGTERM, then SIGKILL after a timeout).
Everything the server prints goes to ``root/server.log`` (``srv.log()``).

Other suites (S3, GC) reuse it: ``write_config`` replaces the TOML file
(``[server] bind`` and the data directory come from the command line), and
``env`` adds environment variables.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests

__all__ = ["ServerProcess"]

ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"Listening at: \w+://127\.0\.0\.1:(\d+)")
_POLL = 0.05


class ServerError(RuntimeError):
    """The server did not start (the message carries its log)."""


class ServerProcess:
    """One service process. See the module docstring."""

    def __init__(
        self,
        root: Path,
        *,
        config: str = "",
        env: Mapping[str, str] | None = None,
        workers: int = 1,
        threads: int = 4,
        https: bool = False,
        verify: str | bool = True,
        via_gunicorn_conf: bool = False,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.root / "data"
        self.config_path = self.root / "blobstore.toml"
        self.log_path = self.root / "server.log"
        self.env = dict(env or {})
        self.workers = workers
        self.threads = threads
        self.scheme = "https" if https else "http"
        #: For requests' ``verify``: a CA file for a test certificate.
        self.verify = verify
        self.via_gunicorn_conf = via_gunicorn_conf
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.write_config(config)

    # -- configuration -------------------------------------------------------

    def write_config(self, text: str) -> None:
        """Replace the TOML configuration (takes effect at the next start)."""
        self.config_path.write_text(text)

    @property
    def url(self) -> str:
        assert self.port is not None, "not started"
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def cli(self, *args: str) -> list[str]:
        """``blobstore ARGS`` on this server's config and data directory (an
        operator's job beside the service: gc, heal, check)."""
        return [
            str(Path(sys.executable).parent / "blobstore"), *args,
            "--config", str(self.config_path), "--data-dir", str(self.data_dir),
        ]  # fmt: skip

    @staticmethod
    def cli_env() -> dict[str, str]:
        """The environment for :meth:`cli`: the file alone configures it."""
        return {k: v for k, v in os.environ.items() if not k.startswith("BLOBSTORE_")}

    def _command(self, bind: str) -> list[str]:
        bin_dir = Path(sys.executable).parent
        if self.via_gunicorn_conf:
            return [
                str(bin_dir / "gunicorn"),
                "-c",
                str(ROOT / "config" / "gunicorn.conf.py"),
                "--bind",
                bind,
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
                "blobstore_api.wsgi:application",
            ]
        return [
            str(bin_dir / "blobstore"),
            "serve",
            "--config",
            str(self.config_path),
            "--data-dir",
            str(self.data_dir),
            "--bind",
            bind,
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
        ]

    def _environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("BLOBSTORE_", "PROMETHEUS_", "GLIBC_TUNABLES"))
        }
        if self.via_gunicorn_conf:
            env["BLOBSTORE_CONFIG"] = str(self.config_path)
            env["BLOBSTORE_DATA_DIR"] = str(self.data_dir)
        env.update(self.env)
        return env

    # -- life cycle ------------------------------------------------------------

    def start(self, timeout: float = 60) -> None:
        """Start and wait until ``/healthz`` answers and every worker process
        is up (the first answer only proves one is)."""
        assert self.process is None, "already running"
        bind = f"127.0.0.1:{self.port or 0}"
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self._command(bind),
                cwd=self.root,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        self.port = self._wait_for_port(offset, deadline)
        self._wait_for_health(deadline)
        self._wait_for_workers(deadline)

    def _check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            code = self.process.returncode
            self.process = None
            raise ServerError(f"server exited with {code}:\n{self.log()}")

    def _wait_for_port(self, offset: int, deadline: float) -> int:
        while time.monotonic() < deadline:
            self._check_alive()
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                match = _LISTENING.search(f.read().decode(errors="replace"))
            if match:
                return int(match.group(1))
            time.sleep(_POLL)
        self.stop()
        raise ServerError(f"server did not listen in time:\n{self.log()}")

    def _wait_for_health(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                # Accepted by the kernel even before a worker is up: the
                # request waits for one, so this is one round trip normally.
                response = requests.get(
                    f"{self.url}/healthz",
                    timeout=max(0.1, deadline - time.monotonic()),
                    verify=self.verify,
                )
                if response.status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(_POLL)
        self.stop()
        raise ServerError(f"server did not become healthy in time:\n{self.log()}")

    def _wait_for_workers(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            self._check_alive()
            if len(self.worker_pids()) >= self.workers:
                return
            time.sleep(_POLL)
        self.stop()
        raise ServerError(f"not every worker started in time:\n{self.log()}")

    def stop(self, timeout: float = 30) -> int | None:
        """Stop the server (SIGTERM, then SIGKILL); return its exit status."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        return process.returncode

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inspection --------------------------------------------------------------

    def log(self) -> str:
        return (
            self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        )

    def worker_pids(self) -> list[int]:
        """The PIDs of the master's child processes (gunicorn workers)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited while scanning
            if int(fields[1]) == self.pid:
                pids.append(int(stat.parent.name))
        return sorted(pids)

    @staticmethod
    def memory(pid: int) -> dict[str, int]:
        """``VmRSS`` and ``VmHWM`` (peak RSS) of a process, in bytes."""
        values = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
        return values
