"""Several nodes on one machine: three ``blobstore serve`` processes on the
same SQLite catalog file and the same blob directory. One upload's parts go
to different nodes and a third finishes it; a blob put on one is read,
pinned and ranged on the others; GC passes started on every node at once
run one at a time (the catalog lease): one runs, the others exit 75.
docs/reliability.md lists what it proved.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore.lease import Lease
from tests.e2e.server import ServerProcess

MiB = 1024 * 1024


@pytest.fixture
def nodes(tmp_path):
    shared = tmp_path / "shared"
    config = (
        f'[catalog]\npath = "{shared / "catalog.db"}"\n'
        f'[backend]\npath = "{shared / "blobs"}"\n'
        "[limits]\nmin_part_size = 1024\n"
    )
    servers = [ServerProcess(tmp_path / f"node{i}", config=config) for i in range(3)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


def test_an_upload_spread_over_three_nodes(nodes):
    a, b, c = (n.url for n in nodes)
    parts = [os.urandom(2 * MiB), os.urandom(2 * MiB), os.urandom(MiB // 3)]
    upload = requests.post(f"{a}/v1/uploads", timeout=30).json()["id"]
    offset = 0
    for number, (part, node) in enumerate(zip(parts, (a, b, c), strict=True)):
        answer = requests.put(
            f"{node}/v1/uploads/{upload}/parts/{number}",
            params={"hash": hashlib.sha384(part).hexdigest(), "offset": offset},
            data=part,
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        offset += len(part)
    finished = requests.post(
        f"{c}/v1/uploads/{upload}/finish",
        json={"parts": [{"hash": hashlib.sha384(p).hexdigest()} for p in parts]},
        timeout=60,
    )
    assert finished.status_code == 200, finished.text
    whole = b"".join(parts)
    assert finished.json()["hash"] == hashlib.sha384(whole).hexdigest()
    digest = finished.json()["hash"]
    for node in (a, b, c):
        assert requests.get(f"{node}/v1/blobs/{digest}", timeout=60).content == whole
    assert requests.put(f"{b}/v1/refs/spread", json={"hash": digest}, timeout=30).ok
    ranged = requests.get(
        f"{a}/v1/blobs/{digest}", headers={"Range": f"bytes={2 * MiB - 3}-{2 * MiB + 2}"},
        timeout=30,
    )
    assert ranged.content == whole[2 * MiB - 3 : 2 * MiB + 3]


def gc(node: ServerProcess) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOBSTORE_")}
    command = [
        str(Path(sys.executable).parent / "blobstore"), "gc", "--grace", "0",
        "--config", str(node.config_path), "--data-dir", str(node.data_dir),
    ]
    return subprocess.run(command, capture_output=True, env=env, timeout=120).returncode


def test_gc_passes_on_every_node_run_one_at_a_time(nodes, tmp_path):
    for node in nodes:  # something to collect, put on each node
        requests.post(f"{node.url}/v1/blobs", data=os.urandom(50_000), timeout=30)
    # While another process holds the gc lease, no node's pass runs.
    catalog = SQLiteCatalog(tmp_path / "shared" / "catalog.db")
    try:
        with Lease(catalog):
            with ThreadPoolExecutor(3) as pool:
                assert list(pool.map(gc, nodes)) == [75, 75, 75]
            assert requests.get(f"{nodes[0].url}/v1/stats", timeout=30).json()[
                "blobs"
            ] == 3
    finally:
        catalog.close()
    # Released: passes started on every node at once all end well, and
    # whichever ran collected everything, once.
    with ThreadPoolExecutor(3) as pool:
        codes = list(pool.map(gc, nodes))
    assert set(codes) <= {0, 75} and 0 in codes, codes
    assert requests.get(f"{nodes[0].url}/v1/stats", timeout=30).json()["blobs"] == 0
