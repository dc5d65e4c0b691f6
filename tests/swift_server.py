"""A real single-node OpenStack Swift on 127.0.0.1, started by the test run.

:class:`SwiftServer` runs what a "Swift all in one" runs, minus the
background daemons a test never waits for (replicators, auditors, updaters):

* memcached (tempauth keeps its tokens there),
* account, container and object servers with one device each,
* a proxy with tempauth (user ``test:tester``, key ``testing``), SLO, DLO and
  the ``s3api`` middleware (access key ``test:tester``, secret ``testing``),
  so later benchmarks can compare against Swift's own S3 on the same data.

Facts that make it work on these machines (see the shared
``swift-on-loopback.md``): the devices live on a tmpfs under ``/dev/shm``
(ext4 and /tmp cap xattrs near Swift's own metadata limit, and a 507 there
blocks the device for a minute); rings are built with the ``RingBuilder``
Python API in one process (``swift-ring-builder`` is ~0.4 s per call); there
is no syslog socket, so Swift logs over UDP to a collector thread here, and
:meth:`SwiftServer.log_tail` puts the last lines into failure messages.

Every process is started in its own session and stopped by its own PID, so
nothing else on a shared machine is touched. The proxy can be stopped and
started again on the same port (:meth:`SwiftServer.proxy_stopped`) for
outage tests; :meth:`SwiftServer.flush_tokens` invalidates every tempauth
token. The pytest fixture that owns one per session is in ``conftest.py``.
"""

from __future__ import annotations

import collections
import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SwiftServer", "SwiftStartError"]

SERVERS = ("account", "container", "object")
USER = "test:tester"
KEY = "testing"
ACCOUNT = "AUTH_test"
STARTUP_TIMEOUT = 60.0
# s3api sits before tempauth, which then checks S3 signatures too.
PROXY_PIPELINE = (
    "catch_errors gatekeeper healthcheck proxy-logging cache listing_formats "
    "s3api tempauth copy slo dlo versioned_writes proxy-logging proxy-server"
)


class SwiftStartError(RuntimeError):
    """Swift (or memcached) could not be started; the message says why."""


def _make_root(base_dir: Path | None = None) -> Path:
    """A fresh directory for configs, devices and logs: under *base_dir* if
    given, else on the /dev/shm tmpfs when it takes user xattrs
    (Linux >= 6.6), else in the temp directory (fine for the small metadata
    the tests write)."""
    bases = (str(base_dir),) if base_dir is not None else ("/dev/shm", None)
    for base in bases:
        if base is not None and not os.access(base, os.W_OK):
            continue
        root = Path(tempfile.mkdtemp(prefix="blobstore-swift-", dir=base))
        probe = root / "xattr-probe"
        probe.touch()
        try:
            os.setxattr(probe, "user.swift.probe", b"1")
        except OSError:
            shutil.rmtree(root, ignore_errors=True)
            continue
        probe.unlink()
        return root
    raise SwiftStartError(
        "no directory here takes user xattrs, which Swift stores metadata in"
    )


def free_port() -> int:
    """A port nothing listens on right now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _LogCollector:
    """Receives Swift's syslog datagrams on a UDP port and keeps the last
    lines (Swift has no syslog socket to write to here)."""

    def __init__(self, path: Path, keep: int = 5000) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._lines: collections.deque[str] = collections.deque(maxlen=keep)
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                return  # socket closed: stop
            line = data.decode("utf-8", "replace").rstrip("\x00\n")
            # Drop the "<priority>" syslog prefix.
            if line.startswith("<") and ">" in line[:6]:
                line = line[line.index(">") + 1 :]
            with self._lock:
                self._lines.append(line)
                self._file.write(line + "\n")
                self._file.flush()

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def close(self) -> None:
        # shutdown() wakes the thread blocked in recv(); close() alone may not.
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=5)
        self._file.close()


@dataclass
class _Proc:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None


class SwiftServer:
    """One Swift cluster (one node, one replica) under a fresh directory.

    :param proxy_workers: the proxy's ``workers`` (0: serve in the main
        process, the cheapest; benchmarks may want more).
    :param base_dir: where to make the server's directory (devices included);
        by default a tmpfs. Benchmarks put it on the same disk as the
        service they compare it with, so both pay the same fsyncs.
    """

    def __init__(self, *, proxy_workers: int = 0, base_dir: Path | None = None) -> None:
        self.proxy_workers = proxy_workers
        self.base_dir = base_dir
        self.root: Path | None = None
        self.ports: dict[str, int] = {}
        self._procs: dict[str, _Proc] = {}
        self._logs: _LogCollector | None = None

    # -- what tests use ----------------------------------------------------

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['proxy']}"

    @property
    def auth_url(self) -> str:
        """The tempauth (auth v1) URL."""
        return f"{self.proxy_url}/auth/v1.0"

    @property
    def storage_url(self) -> str:
        return f"{self.proxy_url}/v1/{ACCOUNT}"

    user = USER
    key = KEY
    account = ACCOUNT
    #: S3 credentials for the ``s3api`` middleware (path-style, SigV4 or V2).
    s3_access_key = USER
    s3_secret_key = KEY

    @property
    def s3_endpoint(self) -> str:
        return self.proxy_url

    def backend_config(self, container: str, **overrides: Any) -> dict[str, Any]:
        """A ``[backend]`` table for this server (tempauth), with test-friendly
        retries: one retry after 50 ms, so outage tests stay fast."""
        config: dict[str, Any] = {
            "type": "swift",
            "auth_url": self.auth_url,
            "auth_version": 1,
            "user": self.user,
            "key": self.key,
            "container": container,
            "retries": 1,
            "retry_backoff": 0.05,
            "max_backoff": 0.2,
            "timeout": 20,
        }
        config.update(overrides)
        return config

    def log_tail(self, n: int = 40) -> str:
        lines = self._logs.lines() if self._logs else []
        return "\n".join(lines[-n:])

    def access_log(self, needle: str) -> list[str]:
        """The proxy's access-log lines that mention *needle*."""
        if self._logs is None:
            return []
        return [
            line
            for line in self._logs.lines()
            if "proxy-server" in line and needle in line
        ]

    def wait_for_access_log(
        self, needle: str, count: int = 1, timeout: float = 10.0
    ) -> list[str]:
        """Wait until the proxy has logged *count* lines mentioning *needle*
        (log lines arrive over UDP, a moment after the response) and return
        them all."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.access_log(needle)
            if len(lines) >= count:
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the proxy logged {len(lines)} of {count} lines with {needle!r}:"
                    f"\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def flush_tokens(self) -> None:
        """Invalidate every tempauth token (memcached ``flush_all``)."""
        with socket.create_connection(("127.0.0.1", self.ports["memcached"])) as s:
            s.sendall(b"flush_all\r\n")
            reply = s.recv(64)
        if not reply.startswith(b"OK"):
            raise RuntimeError(f"memcached flush_all answered {reply!r}")

    @contextlib.contextmanager
    def proxy_stopped(self) -> Iterator[None]:
        """Stop the proxy for the block (a Swift outage), then start it again
        on the same port and wait until it serves."""
        self.stop_proxy()
        try:
            yield
        finally:
            self.start_proxy()

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """Make sure the proxy runs again after the block, however the block
        stopped it (for tests that stop it midway with :meth:`stop_proxy`)."""
        try:
            yield
        finally:
            if not self.proxy_running():
                self.start_proxy()

    def pids(self) -> list[int]:
        """Every process this server runs: each server and its workers."""
        leaders = [
            p.popen.pid
            for p in self._procs.values()
            if p.popen is not None and p.popen.poll() is None
        ]
        pids = list(leaders)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited while scanning
            if int(fields[1]) in leaders:
                pids.append(int(stat.parent.name))
        return sorted(pids)

    def proxy_running(self) -> bool:
        p = self._procs["proxy"].popen
        return p is not None and p.poll() is None

    def stop_proxy(self, *, kill: bool = False) -> None:
        """Stop the proxy: SIGTERM, or SIGKILL with *kill* (a crash: open
        connections are cut at once instead of being allowed to finish)."""
        self._stop(self._procs["proxy"], kill=kill)

    def start_proxy(self) -> None:
        proc = self._procs["proxy"]
        self._spawn(proc)
        self._wait_healthy(proc, self.ports["proxy"])
        self._wait_login()

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Write the configs, build the rings, start everything, wait until
        a tempauth login works. Raises :class:`SwiftStartError`."""
        memcached = shutil.which("memcached") or "/usr/sbin/memcached"
        if not os.path.exists(memcached):
            raise SwiftStartError(
                "memcached is not installed (Debian package 'memcached'; "
                "`./dev test` installs it)"
            )
        bindir = Path(sys.executable).parent
        if not (bindir / "swift-proxy-server").exists():
            raise SwiftStartError(
                f"Swift is not installed in {bindir} (pip package 'swift', "
                "in the 'test' extra; `./dev test` installs it)"
            )
        self.root = _make_root(self.base_dir)
        try:
            self._start(memcached, bindir)
        except BaseException:
            self.stop()
            raise

    def _start(self, memcached: str, bindir: Path) -> None:
        assert self.root is not None
        etc = self.root / "etc"
        etc.mkdir()
        for name in ("memcached", "proxy", *SERVERS):
            self.ports[name] = free_port()
        self._logs = _LogCollector(self.root / "swift.log")
        self._write_configs(etc)
        self._build_rings(etc)

        argv = [memcached, "-l", "127.0.0.1", "-p", str(self.ports["memcached"])]
        argv += ["-U", "0", "-m", "64"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        self._procs["memcached"] = _Proc("memcached", argv, self.root / "memcached.out")
        for name in (*SERVERS, "proxy"):
            script = bindir / f"swift-{name}-server"
            argv = [sys.executable, str(script), str(etc / f"{name}-server.conf")]
            self._procs[name] = _Proc(name, argv, self.root / f"{name}.out")
        # Start all at once: each Swift server spends ~1 s importing.
        for proc in self._procs.values():
            self._spawn(proc)
        self._wait_port(self._procs["memcached"], self.ports["memcached"])
        for name in (*SERVERS, "proxy"):
            self._wait_healthy(self._procs[name], self.ports[name])
        self._wait_login()

    def stop(self) -> None:
        """Stop exactly the processes this server started, then remove its
        directory (devices, configs, logs)."""
        for name in ("proxy", *SERVERS, "memcached"):
            proc = self._procs.get(name)
            if proc is not None:
                self._stop(proc)
        if self._logs is not None:
            self._logs.close()
            self._logs = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    # -- processes -----------------------------------------------------------

    def _spawn(self, proc: _Proc) -> None:
        with open(proc.log, "ab") as out:
            proc.popen = subprocess.Popen(
                proc.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own session: a Swift parent with workers signals its
                # process group when it stops, which must not be ours.
                start_new_session=True,
            )

    def _stop(self, proc: _Proc, *, kill: bool = False) -> None:
        p = proc.popen
        if p is None or p.poll() is not None:
            return
        # The process leads its own group (start_new_session), which holds
        # only it and its workers; while it is not yet reaped, its id cannot
        # name anything else, so signalling the group is exact.
        if kill:
            os.killpg(p.pid, signal.SIGKILL)
        else:
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)

    def _failure(self, proc: _Proc, what: str) -> SwiftStartError:
        out = proc.log.read_text(errors="replace")[-3000:] if proc.log.exists() else ""
        return SwiftStartError(
            f"{proc.name}: {what}\n--- {proc.name} output ---\n{out}"
            f"\n--- Swift log ---\n{self.log_tail()}"
        )

    def _poll(self, proc: _Proc, what: str, ready) -> None:
        # Servers signal readiness only by answering, so poll (with the
        # process's liveness checked each round so a crash fails fast).
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if proc.popen is None or proc.popen.poll() is not None:
                raise self._failure(proc, f"exited while waiting for {what}")
            if ready():
                return
            if time.monotonic() > deadline:
                raise self._failure(proc, f"timed out waiting for {what}")
            time.sleep(0.05)

    def _wait_port(self, proc: _Proc, port: int) -> None:
        def ready() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return False
            return True

        self._poll(proc, f"port {port}", ready)

    def _wait_healthy(self, proc: _Proc, port: int) -> None:
        url = f"http://127.0.0.1:{port}/healthcheck"

        def ready() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    return resp.status == 200
            except (OSError, urllib.error.URLError):
                return False

        self._poll(proc, f"{url} to answer", ready)

    def _wait_login(self) -> None:
        request = urllib.request.Request(
            self.auth_url, headers={"X-Auth-User": USER, "X-Auth-Key": KEY}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                token = resp.headers.get("X-Auth-Token")
                url = resp.headers.get("X-Storage-Url")
        except (OSError, urllib.error.URLError) as exc:
            raise self._failure(self._procs["proxy"], f"tempauth login: {exc}") from exc
        if not token or not url:
            raise self._failure(self._procs["proxy"], "tempauth login gave no token")
        # One authenticated request proves the account/container path works.
        check = urllib.request.Request(
            url, method="HEAD", headers={"X-Auth-Token": token}
        )
        try:
            with urllib.request.urlopen(check, timeout=10):
                pass
        except (OSError, urllib.error.URLError) as exc:
            raise self._failure(self._procs["proxy"], f"account HEAD: {exc}") from exc

    # -- configuration ---------------------------------------------------------

    def _write_configs(self, etc: Path) -> None:
        assert self.root is not None and self._logs is not None
        devices = self.root / "devices"
        (devices / "d1").mkdir(parents=True)
        (etc / "swift.conf").write_text(
            textwrap.dedent(
                """\
                [swift-hash]
                swift_hash_path_suffix = blobstore-tests
                swift_hash_path_prefix = blobstore-tests

                [storage-policy:0]
                name = gold
                default = yes
                """
            )
        )
        user = getpass.getuser()

        def default(name: str, workers: int = 0) -> str:
            return textwrap.dedent(
                f"""\
                [DEFAULT]
                bind_ip = 127.0.0.1
                bind_port = {self.ports[name]}
                workers = {workers}
                user = {user}
                swift_dir = {etc}
                devices = {devices}
                mount_check = false
                log_name = {name}-server
                log_level = INFO
                log_udp_host = 127.0.0.1
                log_udp_port = {self._logs.port}
                """
            )

        egg = {"account": "account", "container": "container", "object": "object"}
        for name in SERVERS:
            (etc / f"{name}-server.conf").write_text(
                default(name)
                + textwrap.dedent(
                    f"""\

                    [pipeline:main]
                    pipeline = healthcheck {name}-server

                    [app:{name}-server]
                    use = egg:swift#{egg[name]}

                    [filter:healthcheck]
                    use = egg:swift#healthcheck
                    """
                )
            )
        (etc / "proxy-server.conf").write_text(
            default("proxy", self.proxy_workers)
            + textwrap.dedent(
                f"""\

                [pipeline:main]
                pipeline = {PROXY_PIPELINE}

                [app:proxy-server]
                use = egg:swift#proxy
                account_autocreate = true
                allow_account_management = true

                [filter:tempauth]
                use = egg:swift#tempauth
                user_test_tester = {KEY} .admin

                [filter:s3api]
                use = egg:swift#s3api
                # Path-style only (no storage_domain); tempauth checks the
                # signatures, so no s3token/keystone filter is needed.
                location = us-east-1

                [filter:cache]
                use = egg:swift#memcache
                memcache_servers = 127.0.0.1:{self.ports["memcached"]}

                [filter:catch_errors]
                use = egg:swift#catch_errors

                [filter:gatekeeper]
                use = egg:swift#gatekeeper

                [filter:healthcheck]
                use = egg:swift#healthcheck

                [filter:proxy-logging]
                use = egg:swift#proxy_logging

                [filter:listing_formats]
                use = egg:swift#listing_formats

                [filter:copy]
                use = egg:swift#copy

                [filter:slo]
                use = egg:swift#slo

                [filter:dlo]
                use = egg:swift#dlo

                [filter:versioned_writes]
                use = egg:swift#versioned_writes
                """
            )
        )

    def _build_rings(self, etc: Path) -> None:
        # In a child process: importing Swift pulls in eventlet, which has no
        # business in the test process (and warnings are errors there).
        devices = {name: self.ports[name] for name in SERVERS}
        script = textwrap.dedent(
            f"""\
            from swift.common.ring import RingBuilder
            for kind, port in {devices!r}.items():
                builder = RingBuilder(6, 1, 1)
                builder.add_dev({{
                    "id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1",
                    "port": port, "replication_ip": "127.0.0.1",
                    "replication_port": port, "device": "d1",
                    "weight": 100.0, "meta": "",
                }})
                builder.rebalance()
                builder.get_ring().save({str(etc)!r} + "/" + kind + ".ring.gz")
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise SwiftStartError(
                f"building the rings failed:\n{result.stderr[-3000:]}"
            )
