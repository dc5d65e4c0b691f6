"""Crashes, proved over HTTP against a real ``blobstore serve``: a worker
killed with SIGKILL in the middle of a 200 MiB PUT, and the whole service
killed while eight clients write. An acknowledged write survives; nothing
is half-visible; the leftovers are swept; the SQLite catalog is intact.
docs/reliability.md lists what each case proved.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path

import requests

from tests.e2e.server import ServerProcess

MiB = 1024 * 1024


def tmp_files(server: ServerProcess) -> list[Path]:
    return [p for p in (server.data_dir / "blobs" / "tmp").rglob("*") if p.is_file()]


def writing_worker(server: ServerProcess) -> int | None:
    """The worker that has a temp file of the blob store open."""
    tmp = str(server.data_dir / "blobs" / "tmp")
    for pid in server.worker_pids():
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd).startswith(tmp):
                    return pid
            except OSError:
                continue
    return None


def wait_for(predicate, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_worker_killed_mid_put_leaves_nothing_and_is_replaced(server_factory):
    server = server_factory(workers=2)
    server.start()
    size = 200 * MiB
    block = os.urandom(MiB)
    digest = hashlib.sha384()
    for _ in range(200):
        digest.update(block)
    before = set(server.worker_pids())
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(
            f"PUT /v1/blobs/{digest.hexdigest()} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {size}\r\n\r\n".encode()
        )
        for _ in range(60):
            sock.sendall(block)
        wait_for(lambda: writing_worker(server) is not None, what="the writer")
        victim = writing_worker(server)
        os.kill(victim, signal.SIGKILL)
        try:  # the connection dies with the worker
            sock.settimeout(30)
            while sock.recv(65536):
                pass
        except OSError:
            pass
    # gunicorn replaces the worker; the new one sweeps the crashed write.
    wait_for(
        lambda: (
            len(set(server.worker_pids()) - before) == 1
            and len(server.worker_pids()) == 2
        ),
        what="a replacement worker",
    )
    wait_for(lambda: tmp_files(server) == [], what="the temp file to be swept")
    url = f"{server.url}/v1/blobs/{digest.hexdigest()}"
    assert requests.head(url, timeout=30).status_code == 404
    assert requests.get(f"{server.url}/v1/stats", timeout=30).json()["blobs"] == 0
    assert requests.post(f"{server.url}/v1/blobs", data=b"after", timeout=30).ok


def test_the_service_killed_under_eight_writers_keeps_every_acknowledged_put(
    server_factory, tmp_path
):
    server = server_factory(workers=2, threads=8)
    server.start()
    acked_log = tmp_path / "acked.jsonl"
    attempted: dict[str, tuple[int, int]] = {}  # hash -> (seed, size)
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def data_of(seed: int, size: int) -> bytes:
        return random.Random(seed).randbytes(size)

    def writer(n: int) -> None:
        rng = random.Random(n)
        session = requests.Session()
        i = 0
        while not stop.is_set():
            seed, size = n * 1_000_000 + i, rng.randint(4 * 1024, 4 * MiB)
            i += 1
            data = data_of(seed, size)
            digest = hashlib.sha384(data).hexdigest()
            with lock:
                attempted[digest] = (seed, size)
            try:
                answer = session.put(
                    f"{server.url}/v1/blobs/{digest}", data=data, timeout=30
                )
            except requests.RequestException:
                return  # the service is gone
            if answer.status_code in (200, 201):
                with lock:
                    acked.append(digest)
                    with open(acked_log, "a") as log:
                        log.write(json.dumps({"hash": digest, "seed": seed}) + "\n")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(acked) >= 40, what="40 acknowledged puts")
    pids = [*server.worker_pids(), server.pid]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    server.process.wait()
    server.process = None

    catalog = sqlite3.connect(server.data_dir / "catalog.db")
    try:  # kill -9 mid-transaction: the WAL keeps the database whole
        assert catalog.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        catalog.close()
    server.start()
    logged = [json.loads(line)["hash"] for line in acked_log.read_text().splitlines()]
    assert sorted(logged) == sorted(acked)
    for digest in logged:  # every acknowledged put, exact
        seed, size = attempted[digest]
        got = requests.get(f"{server.url}/v1/blobs/{digest}", timeout=60)
        assert got.status_code == 200, digest
        assert got.content == data_of(seed, size)
    for digest, (seed, size) in attempted.items():
        if digest in acked:
            continue  # in flight when it died: absent, or whole
        got = requests.get(f"{server.url}/v1/blobs/{digest}", timeout=60)
        assert got.status_code in (200, 404), got.status_code
        if got.status_code == 200:
            assert got.content == data_of(seed, size)
    # The crashed writes' temp files are swept by the new workers.
    wait_for(lambda: tmp_files(server) == [], what="the temp files to be swept")
