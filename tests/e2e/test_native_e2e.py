"""The real service over real HTTP: `blobstore serve` in a subprocess."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import trustme

from blobstore.hashing import hash_bytes
from tests.e2e.server import ServerProcess
from tests.helpers import DataSource

MiB = 1024 * 1024
BIG = 200 * MiB


def generate(size: int, fill: int = 0, chunk: int = MiB):
    """The DataSource bytes as a generator (requests sends it chunked)."""
    source = DataSource(size, fill)
    while data := source.read(chunk):
        yield data


def source_slice(start: int, length: int) -> bytes:
    """Bytes *start*.. of a DataSource, without generating what precedes them
    (its pattern repeats every 64 KiB)."""
    block = DataSource(65536).read(65536)
    repeated = block * (length // len(block) + 2)
    offset = start % len(block)
    return repeated[offset : offset + length]


def minor_faults(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def metric(server: ServerProcess, name: str, **labels: str) -> float:
    """The value of one series from /metrics (0 when absent)."""
    text = requests.get(f"{server.url}/metrics", timeout=30).text
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        series, value = line.rsplit(" ", 1)
        found = dict(re.findall(r'(\w+)="([^"]*)"', series))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return 0.0


def wait_for_metric(server, value, name, timeout=30, **labels) -> None:
    """Poll until a counter reaches *value*: the server has finished handling
    the requests it counts (their response is counted before it is sent)."""
    deadline = time.monotonic() + timeout
    while metric(server, name, **labels) < value:
        assert time.monotonic() < deadline, f"{name}{labels} never reached {value}"
        time.sleep(0.05)


@pytest.mark.slow
def test_200_mib_blob_streams_both_ways_in_constant_memory(server):
    expected = DataSource.digest(BIG)
    (worker,) = server.worker_pids()
    before = server.memory(worker)["VmHWM"]
    faults = minor_faults(worker)

    put = requests.put(
        f"{server.url}/v1/blobs/{expected}", data=generate(BIG), timeout=120
    )
    assert put.status_code == 201, put.text
    assert put.json() == {"hash": expected, "size": BIG}
    # With blobstore serve's malloc tunables, the 1 MiB body chunks reuse
    # freed memory; with glibc's defaults each one faults in fresh pages
    # (about 100,000 faults for 200 MiB on these machines, against ~1,000).
    faults = minor_faults(worker) - faults
    assert faults < 20000, f"{faults} page faults reading a 200 MiB body"

    with requests.get(
        f"{server.url}/v1/blobs/{expected}", stream=True, timeout=120
    ) as got:
        assert got.status_code == 200
        assert got.headers["Content-Length"] == str(BIG)
        digest = hashlib.sha384()
        for chunk in got.iter_content(MiB):
            digest.update(chunk)
    assert digest.hexdigest() == expected

    # Unknown hash: computed by the server while streaming; deduplicated.
    post = requests.post(f"{server.url}/v1/blobs", data=generate(BIG), timeout=120)
    assert post.status_code == 200
    assert post.json()["hash"] == expected

    growth = server.memory(worker)["VmHWM"] - before
    assert growth < 64 * MiB, f"worker peak RSS grew by {growth / MiB:.0f} MiB"

    # Ranges from the local backend go through gunicorn's sendfile path.
    for start, end in [(0, 99), (BIG - 3 * MiB, BIG - 1), (BIG - 10, BIG - 1)]:
        ranged = requests.get(
            f"{server.url}/v1/blobs/{expected}",
            headers={"Range": f"bytes={start}-{end}"},
            timeout=60,
        )
        assert ranged.status_code == 206
        assert ranged.content == source_slice(start, end - start + 1)


def test_multipart_refs_and_restart(server_factory):
    server = server_factory(
        config='[limits]\nmin_part_size = "1MiB"\nmax_part_size = "2MiB"\n', threads=8
    )
    server.start()
    url = server.url
    parts = [b"".join(generate(2 * MiB, fill=n)) for n in range(3)] + [b"end" * 1000]
    whole = b"".join(parts)
    offsets = [sum(len(p) for p in parts[:n]) for n in range(len(parts))]

    upload = requests.post(f"{url}/v1/uploads", params={"expires": "600"}, timeout=30)
    assert upload.status_code == 201
    upload_id = upload.json()["id"]
    assert upload.json()["max_part_size"] == 2 * MiB

    def put(n: int) -> int:
        return requests.put(
            f"{url}/v1/uploads/{upload_id}/parts/{n}",
            params={"hash": hash_bytes(parts[n]), "offset": str(offsets[n])},
            data=parts[n],
            timeout=60,
        ).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(put, range(len(parts)))) == [200] * len(parts)
    finished = requests.post(
        f"{url}/v1/uploads/{upload_id}/finish",
        json={"parts": [{"hash": hash_bytes(p)} for p in parts]},
        timeout=60,
    )
    assert finished.status_code == 200, finished.text
    whole_hash = finished.json()["hash"]
    assert whole_hash == hash_bytes(whole)

    small = b"a small blob"
    requests.put(f"{url}/v1/blobs/{hash_bytes(small)}", data=small, timeout=30)
    ref = requests.put(
        f"{url}/v1/refs/releases/1.0", json={"hash": whole_hash}, timeout=30
    )
    assert ref.status_code == 201

    server.restart()
    assert server.url == url  # same port after a restart

    got = requests.get(f"{url}/v1/blobs/{whole_hash}", timeout=60)
    assert got.content == whole
    across = requests.get(
        f"{url}/v1/blobs/{whole_hash}",
        headers={"Range": f"bytes={2 * MiB - 5}-{4 * MiB + 4}"},
        timeout=60,
    )
    assert across.status_code == 206
    assert across.content == whole[2 * MiB - 5 : 4 * MiB + 5]
    assert (
        requests.get(f"{url}/v1/blobs/{hash_bytes(small)}", timeout=30).content == small
    )
    info = requests.get(f"{url}/v1/uploads/{upload_id}", timeout=30).json()
    assert info["hash"] == whole_hash
    assert [p["complete"] for p in info["parts"]] == [True] * len(parts)
    assert requests.get(f"{url}/v1/refs/releases/1.0", timeout=30).json()["hash"] == (
        whole_hash
    )
    stats = requests.get(f"{url}/v1/stats", timeout=30).json()
    assert (stats["blobs"], stats["composites"]) == (len(parts) + 1, 1)


def _send_and_hang_up(server: ServerProcess, head: bytes, body: bytes) -> None:
    """Send a request head and part of its body, then close the connection
    (an orderly close: the server reads everything sent, then end of file)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)


def test_client_disconnect_mid_upload_leaves_nothing(server):
    data = b"".join(generate(8 * MiB))
    digest = hash_bytes(data)
    # A body with Content-Length that stops halfway.
    head = (
        f"PUT /v1/blobs/{digest} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    _send_and_hang_up(server, head, data[: 3 * MiB])
    # A chunked body that stops mid-chunk.
    head = b"POST /v1/blobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"%x\r\n" % len(data) + data[: 2 * MiB]
    _send_and_hang_up(server, head, chunk)

    # Both requests are done once the server has counted their 400s.
    wait_for_metric(
        server,
        1,
        "blobstore_http_requests_total",
        route="/v1/blobs/{hash}",
        method="PUT",
        status="400",
    )
    wait_for_metric(
        server,
        1,
        "blobstore_http_requests_total",
        route="/v1/blobs",
        method="POST",
        status="400",
    )
    assert (
        requests.get(f"{server.url}/v1/blobs/{digest}", timeout=30).status_code == 404
    )
    stats = requests.get(f"{server.url}/v1/stats", timeout=30).json()
    assert stats["blobs"] == 0
    blobs = server.data_dir / "blobs"
    assert list((blobs / "tmp").iterdir()) == []
    assert [p for p in (blobs / "objects").rglob("*") if p.is_file()] == []


def metrics_dir_of(pid: int) -> Path:
    """The prometheus multiprocess directory a worker writes to (the worker
    keeps its metric files open)."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = Path(os.readlink(fd))
        except OSError:
            continue
        if target.suffix == ".db" and target.parent.name.startswith(
            "blobstore-metrics-"
        ):
            return target.parent
    raise AssertionError(f"process {pid} has no metrics file open")


def any_metrics_dir(pids: list[int]) -> Path:
    for pid in pids:
        try:
            return metrics_dir_of(pid)
        except AssertionError:
            continue
    raise AssertionError(f"none of {pids} has a metrics file open")


def test_workers_share_metrics(server_factory):
    server = server_factory(workers=2)
    server.start()
    workers = server.worker_pids()
    assert len(workers) == 2
    n = 20
    for _ in range(n):  # a new connection each time, so both workers answer
        with requests.Session() as session:
            assert session.get(f"{server.url}/healthz", timeout=30).status_code == 200
    # A worker opens its metrics file when it first counts something; by now
    # at least one has (the directory is the same for both).
    metrics_dir = any_metrics_dir(workers)
    for _ in range(5):  # whichever worker answers, it reports all requests
        with requests.Session() as session:
            text = session.get(f"{server.url}/metrics", timeout=30).text
        counts = re.findall(
            r'blobstore_http_requests_total\{method="GET",route="/healthz",'
            r'status="200"\} (\S+)',
            text,
        )
        # The start-up probe is one more.
        assert counts and float(counts[0]) >= n + 1
    server.stop()
    assert not metrics_dir.exists()  # blobstore serve made it, and removed it


def test_open_service_refuses_a_public_bind(tmp_path):
    # Checked before anything starts: exit 2 with one line.
    blobstore = Path(sys.executable).parent / "blobstore"
    result = subprocess.run(
        [str(blobstore), "serve", "--bind", "0.0.0.0:0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("blobstore: config error: [auth] tokens")
    assert "add tokens or bind to a loopback address" in result.stderr
    assert not (tmp_path / "catalog.db").exists()


def test_gunicorn_conf(server_factory):
    token = "e2e-token-0123456789"
    server = server_factory(
        config=f'[auth]\ntokens = [{{token = "{token}", access = "read-write"}}]\n',
        via_gunicorn_conf=True,
    )
    server.start()
    data = b"via gunicorn -c config/gunicorn.conf.py"
    url = f"{server.url}/v1/blobs/{hash_bytes(data)}"
    assert requests.put(url, data=data, timeout=30).status_code == 401
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.put(url, data=data, headers=auth, timeout=30).status_code == 201
    assert requests.get(url, headers=auth, timeout=30).content == data
    assert (server.data_dir / "catalog.db").exists()
    metrics_dir = metrics_dir_of(server.worker_pids()[0])
    assert metrics_dir.is_dir()
    server.stop()
    assert not metrics_dir.exists()


def test_tls_with_aead_ciphers_only(server_factory, tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile, cafile = (
        tmp_path / n for n in ("cert.pem", "key.pem", "ca.pem")
    )
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    server = server_factory(
        config=f'[server]\ncertfile = "{certfile}"\nkeyfile = "{keyfile}"\n',
        https=True,
        verify=str(cafile),
    )
    server.start()
    assert requests.get(f"{server.url}/healthz", verify=str(cafile), timeout=30).ok

    def context(ciphers: str | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(cafile))
        if ciphers is not None:
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers(ciphers)  # raises if *this* side cannot offer them
        return context

    def handshake(context: ssl.SSLContext) -> str:
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            return f"{tls.version()} {tls.cipher()[0]}"

    assert handshake(context()).startswith("TLSv1.3")
    assert "GCM" in handshake(context("ECDHE+AESGCM"))
    assert "CHACHA20" in handshake(context("ECDHE+CHACHA20"))
    # CBC suites (no AEAD): the client offers them, the server refuses them.
    cbc = context("ECDHE+AES+SHA1:ECDHE+AES+SHA256:ECDHE+AES+SHA384")
    with pytest.raises(ssl.SSLError, match=r"handshake failure|no shared cipher"):
        handshake(cbc)


def test_upload_edges_answer_as_the_reference(server):
    # charmstore's blobstore: zero parts finish as the empty blob (and
    # finishing is idempotent); removing an unknown upload id succeeds.
    upload = requests.post(f"{server.url}/v1/uploads", timeout=30).json()["id"]
    finish = f"{server.url}/v1/uploads/{upload}/finish"
    first = requests.post(finish, json={"parts": []}, timeout=30)
    assert first.status_code == 200, first.text
    assert first.json()["hash"] == hash_bytes(b"")
    assert first.json()["size"] == 0
    assert requests.post(finish, json={"parts": []}, timeout=30).json() == first.json()
    for gone in (upload, "no-such-upload"):
        removed = requests.delete(f"{server.url}/v1/uploads/{gone}", timeout=30)
        assert removed.status_code == 204
    assert (
        requests.get(f"{server.url}/v1/uploads/{upload}", timeout=30).status_code == 404
    )
