"""GC under load, over HTTP: ``blobstore gc --grace 0`` passes run back to
back (separate processes, on the service's configuration) while clients of
a real ``blobstore serve`` (two worker processes) put and dedup-put blobs,
pin them with refs, and send multipart uploads. With no grace at all the
only protection is the design's: a ref is added only to a blob that is
still there (else the client puts it again), and an upload's parts are
roots until it is removed. Afterwards every ref reads back exact, and no
upload lost a part. docs/reliability.md lists what it proved.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import threading
import time

import requests

MiB = 1024 * 1024
DURATION = float(os.environ.get("BLOBSTORE_GC_LOAD_SECONDS", "8"))


def gc_pass(server) -> subprocess.CompletedProcess:
    return subprocess.run(
        server.cli("gc", "--grace", "0", "--json"),
        capture_output=True, text=True, env=server.cli_env(), timeout=120,
    )  # fmt: skip


class Load:
    """The clients and collectors of one run, and what they saw."""

    def __init__(self, server) -> None:
        self.server = server
        self.url = server.url
        self.stop = threading.Event()
        self.pinned: dict[str, bytes] = {}  # ref name -> content
        self.failures: list[str] = []
        self.passes = {"ok": 0, "busy": 0}
        self.lock = threading.Lock()

    def put(self, session, data: bytes) -> None:
        digest = hashlib.sha384(data).hexdigest()
        answer = session.put(f"{self.url}/v1/blobs/{digest}", data=data, timeout=60)
        if answer.status_code not in (200, 201):
            self.failures.append(f"put {answer.status_code} {answer.text[:200]}")

    def pin(self, session, name: str, data: bytes) -> None:
        """Put and pin; a 404 on the ref (collected in between, as grace 0
        allows) means put again."""
        digest = hashlib.sha384(data).hexdigest()
        for _ in range(20):
            self.put(session, data)
            answer = session.put(
                f"{self.url}/v1/refs/{name}", json={"hash": digest}, timeout=60
            )
            if answer.status_code in (200, 201):
                with self.lock:
                    self.pinned[name] = data
                return
            if answer.status_code != 404:
                self.failures.append(f"ref {answer.status_code} {answer.text[:200]}")
                return
        self.failures.append(f"ref {name}: collected 20 times in a row")

    def blobs_client(self, n: int) -> None:
        rng = random.Random(n)
        session = requests.Session()
        shared = [rng.randbytes(1000) for _ in range(3)]  # dedup: the same again
        i = 0
        while not self.stop.is_set():
            i += 1
            if i % 3 == 0:
                data = rng.choice(shared)
            else:
                data = rng.randbytes(rng.randint(1, 300_000))
            self.pin(session, f"load/{n}/{i}", data)
            self.put(session, rng.randbytes(5000))  # garbage: collectable at once

    def send_upload(self, session, rng: random.Random) -> tuple[str, list[bytes]]:
        upload = session.post(f"{self.url}/v1/uploads", timeout=60).json()["id"]
        parts = [rng.randbytes(rng.randint(1024, 200_000)) for _ in range(3)]
        offset = 0
        for number, part in enumerate(parts):
            answer = session.put(
                f"{self.url}/v1/uploads/{upload}/parts/{number}",
                params={"hash": hashlib.sha384(part).hexdigest(), "offset": offset},
                data=part,
                timeout=60,
            )
            offset += len(part)
            if answer.status_code != 200:
                self.failures.append(f"part {answer.status_code} {answer.text[:200]}")
            time.sleep(0.02)  # give GC passes time to run in between
        return upload, parts

    def uploads_client(self, n: int) -> None:
        rng = random.Random(100 + n)
        session = requests.Session()
        i = 0
        while not self.stop.is_set():
            i += 1
            upload, parts = self.send_upload(session, rng)
            finished = session.post(
                f"{self.url}/v1/uploads/{upload}/finish",
                json={
                    "parts": [{"hash": hashlib.sha384(p).hexdigest()} for p in parts]
                },
                timeout=60,
            )
            if finished.status_code != 200:  # a part collected mid-upload
                self.failures.append(f"finish {finished.status_code} {finished.text}")
                continue
            ref = session.put(
                f"{self.url}/v1/refs/mp/{n}/{i}",
                json={"hash": finished.json()["hash"]},
                timeout=60,
            )
            if ref.status_code in (200, 201):
                with self.lock:
                    self.pinned[f"mp/{n}/{i}"] = b"".join(parts)
            session.delete(f"{self.url}/v1/uploads/{upload}", timeout=60)

    def collector(self) -> None:
        while not self.stop.is_set():
            result = gc_pass(self.server)
            if result.returncode == 0:
                self.passes["ok"] += 1
            elif result.returncode == 75:  # another pass holds the lease
                self.passes["busy"] += 1
            else:
                self.failures.append(
                    f"gc exit {result.returncode}: {result.stderr[-500:]}"
                )

    def run(self, seconds: float) -> None:
        threads = [
            threading.Thread(target=self.blobs_client, args=(n,)) for n in range(3)
        ]
        threads += [
            threading.Thread(target=self.uploads_client, args=(n,)) for n in range(2)
        ]
        threads += [threading.Thread(target=self.collector) for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=120)


def test_gc_with_no_grace_in_a_loop_never_loses_what_is_referenced(server_factory):
    server = server_factory(config="[limits]\nmin_part_size = 1024\n", workers=2)
    server.start()
    load = Load(server)
    load.run(DURATION)
    assert load.failures == [], load.failures[:10]
    assert load.passes["ok"] >= 3, load.passes
    assert len(load.pinned) >= 20, len(load.pinned)
    final = gc_pass(server)  # one more, with everything quiet
    assert final.returncode == 0, final.stderr
    for name, data in load.pinned.items():
        ref = requests.get(f"{server.url}/v1/refs/{name}", timeout=30).json()
        got = requests.get(f"{server.url}/v1/blobs/{ref['hash']}", timeout=60)
        assert got.status_code == 200, name
        assert got.content == data, name
