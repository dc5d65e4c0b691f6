"""The machine's limits, measured in the same run as the scenarios.

* single-core SHA-384 and MD5 throughput (hashlib, 1 MiB buffers);
* raw sequential disk write + fsync, and read back (page cache dropped for
  the file with ``posix_fadvise(DONTNEED)`` so the read is not a memcpy);
* raw loopback TCP throughput (one connection, 1 MiB sends).
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20


@dataclass
class Limits:
    sha384: float
    md5: float
    disk_write: float
    disk_read: float
    loopback: float

    def rows(self) -> list[tuple[str, float]]:
        return [
            ("SHA-384, one core", self.sha384),
            ("MD5, one core", self.md5),
            ("disk write + fsync", self.disk_write),
            ("disk read (cold)", self.disk_read),
            ("loopback TCP", self.loopback),
        ]


def _rate(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6  # MB/s


def hash_speed(name: str, total: int) -> float:
    buf = os.urandom(MiB)
    h = hashlib.new(name)
    start = time.perf_counter()
    for _ in range(total // MiB):
        h.update(buf)
    return _rate(total, time.perf_counter() - start)


def disk_speed(directory: Path, total: int) -> tuple[float, float]:
    buf = os.urandom(MiB)
    fd, path = tempfile.mkstemp(dir=directory, prefix="bench-disk.")
    try:
        start = time.perf_counter()
        for _ in range(total // MiB):
            os.write(fd, buf)
        os.fsync(fd)
        write = _rate(total, time.perf_counter() - start)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.lseek(fd, 0, os.SEEK_SET)
        start = time.perf_counter()
        while os.read(fd, MiB):
            pass
        read = _rate(total, time.perf_counter() - start)
    finally:
        os.close(fd)
        os.unlink(path)
    return write, read


def loopback_speed(total: int) -> float:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def sink() -> None:
        conn, _ = server.accept()
        with conn:
            buf = bytearray(MiB)
            while conn.recv_into(buf):
                pass

    t = threading.Thread(target=sink, daemon=True)
    t.start()
    buf = os.urandom(MiB)
    with socket.create_connection(("127.0.0.1", port)) as c:
        start = time.perf_counter()
        for _ in range(total // MiB):
            c.sendall(buf)
        c.shutdown(socket.SHUT_WR)
        t.join()
        elapsed = time.perf_counter() - start
    server.close()
    return _rate(total, elapsed)


def measure(directory: Path, total: int) -> Limits:
    write, read = disk_speed(directory, total)
    return Limits(
        sha384=hash_speed("sha384", total),
        md5=hash_speed("md5", total),
        disk_write=write,
        disk_read=read,
        loopback=loopback_speed(total),
    )
