"""The machine's limits, measured in the same run as the scenarios.

* single-core SHA-384 and MD5 throughput (hashlib, 1 MiB buffers);
* raw sequential disk write + fsync, and read back (page cache dropped for
  the file with ``posix_fadvise(DONTNEED)`` so the read is not a memcpy);
* raw loopback TCP throughput (one connection, 1 MiB sends);
* ``sendfile`` of that file, now in the page cache, over a loopback
  connection: the most a GET served from a cached file can do;
* durable 4 KiB puts per second in bare syscalls (:func:`durable_put_floor`,
  measured by the small-blob scenario): the files, fsyncs, renames and
  catalog commit a put cannot do without.

Each figure is the best of a few runs: other load on a shared machine only
ever makes a run slower, so the fastest run is the closest to the machine's
limit (the scenarios are reported the same way).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from blobstore.backends.erasure.writeback import Writeback

MiB = 1 << 20


@dataclass
class Limits:
    sha384: float
    md5: float
    disk_write: float
    disk_read: float
    loopback: float
    sendfile: float

    #: attribute → the label it is printed under
    LABELS = {
        "sha384": "SHA-384, one core",
        "md5": "MD5, one core",
        "disk_write": "disk write + fsync",
        "disk_read": "disk read (cold)",
        "loopback": "loopback TCP",
        "sendfile": "sendfile, cached file, loopback",
    }

    def rows(self) -> list[tuple[str, float]]:
        return [(label, getattr(self, name)) for name, label in self.LABELS.items()]


def _rate(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6  # MB/s


def hash_speed(name: str, total: int, runs: int = 5) -> float:
    buf = os.urandom(MiB)
    best = 0.0
    for _ in range(runs):
        h = hashlib.new(name)
        start = time.perf_counter()
        for _ in range(max(1, total // runs // MiB)):
            h.update(buf)
        elapsed = time.perf_counter() - start
        best = max(best, _rate(max(1, total // runs // MiB) * MiB, elapsed))
    return best


def _write_file(fd: int, total: int, buf: bytes) -> float:
    """Write and fsync as a put writes a shard: early writeback, and the
    page cache dropped behind (writeback.py), so the limit and the PUT take
    page-cache memory the same way (fresh pages cost several times more on
    these VMs; see writeback.py)."""
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    writeback = Writeback(fd)
    start = time.perf_counter()
    for _ in range(total // MiB):
        os.write(fd, buf)
        writeback.wrote(len(buf))
    os.fsync(fd)
    return _rate(total, time.perf_counter() - start)


def _read_cold(fd: int, total: int) -> float:
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.lseek(fd, 0, os.SEEK_SET)
    buf = bytearray(MiB)
    start = time.perf_counter()
    with open(fd, "rb", buffering=0, closefd=False) as f:
        while f.readinto(buf):
            pass
    return _rate(total, time.perf_counter() - start)


def disk_speed(
    directory: Path, total: int, runs: int = 2
) -> tuple[float, float, float]:
    """Best write+fsync, cold read and loopback ``sendfile`` rates (MB/s)."""
    buf = os.urandom(MiB)
    fd, path = tempfile.mkstemp(dir=directory, prefix="bench-disk.")
    write = read = send = 0.0
    try:
        for _ in range(runs):
            write = max(write, _write_file(fd, total, buf))
            read = max(read, _read_cold(fd, total))
            # The cold read left the file in the page cache.
            send = max(send, sendfile_speed(fd, total))
    finally:
        os.close(fd)
        os.unlink(path)
    return write, read, send


def _sink_server() -> tuple[socket.socket, threading.Thread]:
    """A loopback listener whose one connection is read and discarded."""
    server = socket.create_server(("127.0.0.1", 0))

    def sink() -> None:
        conn, _ = server.accept()
        with conn:
            buf = bytearray(4 * MiB)
            while conn.recv_into(buf):
                pass

    thread = threading.Thread(target=sink, daemon=True)
    thread.start()
    return server, thread


def sendfile_speed(fd: int, total: int) -> float:
    server, thread = _sink_server()
    with socket.create_connection(server.getsockname()[:2]) as c:
        start = time.perf_counter()
        with open(fd, "rb", closefd=False) as f:
            c.sendfile(f, 0, total)
        c.shutdown(socket.SHUT_WR)
        thread.join()
        elapsed = time.perf_counter() - start
    server.close()
    return _rate(total, elapsed)


def loopback_speed(total: int, runs: int = 3) -> float:
    best = 0.0
    buf = os.urandom(MiB)
    for _ in range(runs):
        server, thread = _sink_server()
        with socket.create_connection(server.getsockname()[:2]) as c:
            start = time.perf_counter()
            for _ in range(total // MiB):
                c.sendall(buf)
            c.shutdown(socket.SHUT_WR)
            thread.join()
            elapsed = time.perf_counter() - start
        server.close()
        best = max(best, _rate(total // MiB * MiB, elapsed))
    return best


def measure(directory: Path, total: int) -> Limits:
    """All the limits, each over *total* bytes (hashes: in five runs)."""
    write, read, send = disk_speed(directory, total)
    return Limits(
        sha384=hash_speed("sha384", total),
        md5=hash_speed("md5", total),
        disk_write=write,
        disk_read=read,
        loopback=loopback_speed(total),
        sendfile=send,
    )


_FLOOR_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    hash TEXT PRIMARY KEY, name TEXT, size INTEGER NOT NULL,
    put_time INTEGER NOT NULL, part_index TEXT
);
CREATE INDEX IF NOT EXISTS blobs_put_time ON blobs (put_time);
CREATE INDEX IF NOT EXISTS blobs_name ON blobs (name) WHERE name IS NOT NULL;
"""


def durable_put_floor(directory: Path, seconds: float, size: int = 4096) -> float:
    """Durable small puts per second, one after another, in bare syscalls:
    what the local backend and the SQLite catalog must do for each put and
    nothing else (no HTTP, no hashing, no Python object layers).

    Per put: two new temporary files (the bytes, and the shard's 4 KiB
    header), written and fsynced; both renamed into a fan-out directory,
    which is fsynced; then one row inserted in a WAL database with
    ``synchronous=FULL`` (the catalog's settings, its tables' indexes).
    This is the limit a 4 KiB PUT is compared with: the fsyncs are most of
    its cost, and no code can do fewer and stay as durable.
    """
    root = Path(tempfile.mkdtemp(dir=directory, prefix="bench-floor."))
    db = sqlite3.connect(root / "floor.db", isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.executescript(_FLOOR_SCHEMA)
        data, header = os.urandom(size), b" " * 4096
        tmp = root / "tmp"
        tmp.mkdir()
        fans: set[str] = set()
        done = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            name = os.urandom(16).hex()
            paths = []
            for suffix, body in (("", data), (".meta", header)):
                path = tmp / f"{name}{suffix}"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    os.write(fd, body)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                paths.append((path, suffix))
            fan = root / name[:2]
            if name[:2] not in fans:
                fan.mkdir(exist_ok=True)
                fans.add(name[:2])
            for path, suffix in paths:
                os.replace(path, fan / f"{name}{suffix}")
            dir_fd = os.open(fan, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            db.execute(
                "INSERT INTO blobs (hash, name, size, put_time) VALUES (?, ?, ?, ?)",
                (hashlib.sha384(data + name.encode()).hexdigest(), name, size, done),
            )
            done += 1
        return done / (time.perf_counter() - start)
    finally:
        db.close()
        shutil.rmtree(root, ignore_errors=True)
