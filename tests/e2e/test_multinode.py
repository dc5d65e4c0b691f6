"""Several nodes on one machine: three ``blobstore serve`` processes on the
same catalog (an SQLite file; also a real MongoDB database when
BLOBSTORE_TEST_MONGODB_URI is set) and the same blob directory. One upload's parts go
to different nodes and a third finishes it; a blob put on one is read,
pinned and ranged on the others; GC passes started on every node at once
run one at a time (the catalog lease): one runs, the others exit 75. A
pass whose process is killed mid-sweep keeps the lease only until its ttl
runs out, then a pass on another node takes it and finishes; a pass frozen
past its ttl stops by itself when it wakes, deleting nothing. docs/reliability.md lists what it proved.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from blobstore import Store
from blobstore.backends.local import LocalBackend
from blobstore.catalog.mongo import MongoCatalog
from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore.lease import Lease
from tests.conftest import MONGODB_URI_ENV
from tests.e2e.server import ServerProcess

MiB = 1024 * 1024
#: The nodes' [gc] lease_ttl: short, so a dead holder's lease runs out
#: within the test, long enough to outlive a pass's start-up on a busy box.
LEASE_TTL = 6.0


@pytest.fixture(params=["sqlite", pytest.param("mongodb", marks=pytest.mark.mongodb)])
def catalog_table(request, tmp_path, mongo_database):
    """The nodes' ``[catalog]`` table: an SQLite file, or a fresh database on
    the real MongoDB named by BLOBSTORE_TEST_MONGODB_URI."""
    if request.param == "sqlite":
        yield {"path": str(tmp_path / "shared" / "catalog.db")}
        return
    uri = os.environ.get(MONGODB_URI_ENV)
    if not uri:
        pytest.skip(f"needs a real MongoDB: set {MONGODB_URI_ENV}=mongodb://...")
    yield {"type": "mongodb", "uri": uri, "database": mongo_database}
    import pymongo

    with pymongo.MongoClient(uri) as client:
        client.drop_database(mongo_database)


def open_catalog(table):
    """This process's own connection to the nodes' catalog."""
    if table.get("type") == "mongodb":
        return MongoCatalog.from_config(table)
    return SQLiteCatalog(table["path"])


@pytest.fixture
def nodes(tmp_path, catalog_table):
    shared = tmp_path / "shared"
    catalog = "".join(f"{k} = {json.dumps(v)}\n" for k, v in catalog_table.items())
    config = (
        f"[catalog]\n{catalog}"
        f'[backend]\npath = "{shared / "blobs"}"\n'
        "[limits]\nmin_part_size = 1024\n"
        f'[gc]\nlease_ttl = "{LEASE_TTL}s"\n'
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
        f"{a}/v1/blobs/{digest}",
        headers={"Range": f"bytes={2 * MiB - 3}-{2 * MiB + 2}"},
        timeout=30,
    )
    assert ranged.content == whole[2 * MiB - 3 : 2 * MiB + 3]


def gc_command(node: ServerProcess) -> list[str]:
    return node.cli("gc", "--grace", "0")


def gc(node: ServerProcess) -> int:
    command = gc_command(node)
    return subprocess.run(
        command, capture_output=True, env=ServerProcess.cli_env(), timeout=120
    ).returncode


def test_gc_passes_on_every_node_run_one_at_a_time(nodes, catalog_table):
    for node in nodes:  # something to collect, put on each node
        requests.post(f"{node.url}/v1/blobs", data=os.urandom(50_000), timeout=30)
    # While another process holds the gc lease, no node's pass runs.
    catalog = open_catalog(catalog_table)
    try:
        with Lease(catalog):
            with ThreadPoolExecutor(3) as pool:
                assert list(pool.map(gc, nodes)) == [75, 75, 75]
            assert (
                requests.get(f"{nodes[0].url}/v1/stats", timeout=30).json()["blobs"]
                == 3
            )
    finally:
        catalog.close()
    # Released: passes started on every node at once all end well, and
    # whichever ran collected everything, once.
    with ThreadPoolExecutor(3) as pool:
        codes = list(pool.map(gc, nodes))
    assert set(codes) <= {0, 75} and 0 in codes, codes
    assert requests.get(f"{nodes[0].url}/v1/stats", timeout=30).json()["blobs"] == 0


# -- a pass that dies or freezes mid-sweep -----------------------------------------

#: Unreferenced blobs for a sweep long enough to be caught in the middle.
GARBAGE = 4000


@pytest.fixture
def crowded(nodes, tmp_path, catalog_table):
    """The nodes' store holding GARBAGE unreferenced blobs (put through the
    library, without fsync, for speed) and a few pinned ones (put over HTTP);
    yields (nodes, the pinned contents by hash, a catalog connection)."""
    shared = tmp_path / "shared"
    store = Store(
        open_catalog(catalog_table), LocalBackend(shared / "blobs", fsync=False)
    )
    for i in range(GARBAGE):
        store.put(io.BytesIO(b"garbage %d" % i))
    store.close()
    pinned = {}
    for i in range(12):
        data = os.urandom(1000 + i * 7919)
        digest = requests.post(
            f"{nodes[i % 3].url}/v1/blobs", data=data, timeout=30
        ).json()["hash"]
        assert requests.put(
            f"{nodes[i % 3].url}/v1/refs/keep/{i}", json={"hash": digest}, timeout=30
        ).ok
        pinned[digest] = data
    catalog = open_catalog(catalog_table)
    yield nodes, pinned, catalog
    catalog.close()


def start_pass_and_catch_it_mid_sweep(node, catalog) -> subprocess.Popen:
    """A ``blobstore gc`` on *node*, returned once it has deleted some of the
    garbage and not yet all."""
    total = catalog.blob_totals().blobs
    process = subprocess.Popen(
        gc_command(node),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ServerProcess.cli_env(),
    )
    deadline = time.monotonic() + 60
    while catalog.blob_totals().blobs > total - 300:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the pass never started sweeping"
        time.sleep(0.005)
    return process


def check_everything_pinned_is_whole(nodes, pinned, catalog, tmp_path):
    assert catalog.blob_totals().blobs == len(pinned)
    for digest, data in pinned.items():
        for node in nodes:
            assert (
                requests.get(f"{node.url}/v1/blobs/{digest}", timeout=30).content
                == data
            )
    # At most the one object whose record the killed pass deleted and had
    # not removed yet is left without a record (an orphan, for a later
    # pass's orphan sweep once it is older than the margin).
    names = {r.name for r in catalog.iter_blobs()}
    objects = {o.name for o in LocalBackend(tmp_path / "shared" / "blobs").list()}
    assert names <= objects
    assert len(objects - names) <= 1


def passes_until_one_runs(node) -> tuple[list[int], float]:
    codes = []
    deadline = time.monotonic() + LEASE_TTL * 4
    while time.monotonic() < deadline:
        codes.append(gc(node))
        if codes[-1] != 75:
            return codes, time.monotonic()
        time.sleep(0.3)
    return codes, time.monotonic()


def test_a_pass_killed_mid_sweep_loses_the_lease_and_another_node_finishes(
    crowded, tmp_path
):
    nodes, pinned, catalog = crowded
    first = start_pass_and_catch_it_mid_sweep(nodes[0], catalog)
    first.kill()
    killed = time.monotonic()
    first.communicate(timeout=30)
    left = catalog.blob_totals().blobs
    assert len(pinned) < left < GARBAGE + len(pinned)
    # Its lease lives on (renewed at most ttl/3 before the kill) ...
    codes, ended = passes_until_one_runs(nodes[1])
    assert codes[-1] == 0, codes
    # (held until at least ttl*2/3 after the kill: every pass before was 75)
    assert ended - killed >= LEASE_TTL * 2 / 3
    assert set(codes[:-1]) <= {75}
    # ... and the pass that took it over finished the sweep.
    check_everything_pinned_is_whole(nodes, pinned, catalog, tmp_path)


def test_a_pass_frozen_past_its_ttl_stops_when_it_wakes(nodes, catalog_table, tmp_path):
    """A pass paused (SIGSTOP, a frozen VM) past its lease's ttl: another
    node's pass takes the lease over and runs; the paused one, woken, stops
    before deleting anything, though by then there is garbage it would
    delete (a blob unpinned after the other pass)."""
    garbage = [
        requests.post(f"{n.url}/v1/blobs", data=os.urandom(5000), timeout=30).json()
        for n in nodes
    ]
    doomed = os.urandom(7000)
    digest = requests.post(f"{nodes[0].url}/v1/blobs", data=doomed, timeout=30).json()[
        "hash"
    ]
    assert requests.put(
        f"{nodes[1].url}/v1/refs/d", json={"hash": digest}, timeout=30
    ).ok
    # The paused pass reads an external ref source from a FIFO, so it can be
    # held, lease taken, at a point where it holds no catalog or drive lock.
    fifo = tmp_path / "refs.fifo"
    os.mkfifo(fifo)
    env = {
        **ServerProcess.cli_env(),
        "BLOBSTORE_GC_REF_SOURCES": f'[{{type = "file", path = "{fifo}"}}]',
    }
    paused = subprocess.Popen(
        gc_command(nodes[0]), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    writer = None
    try:
        deadline = time.monotonic() + 30
        while writer is None:  # a writer can open the FIFO once the pass reads it
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                assert paused.poll() is None, paused.communicate()
                assert time.monotonic() < deadline, "the pass never read its source"
                time.sleep(0.02)
        paused.send_signal(signal.SIGSTOP)
        codes, _ = passes_until_one_runs(nodes[2])
        assert codes[-1] == 0 and 75 in codes, codes
        for blob in garbage:
            assert (
                requests.head(
                    f"{nodes[0].url}/v1/blobs/{blob['hash']}", timeout=30
                ).status_code
                == 404
            )
        assert requests.delete(f"{nodes[1].url}/v1/refs/d", timeout=30).ok
    finally:
        paused.send_signal(signal.SIGCONT)
        if writer is not None:
            os.close(writer)  # the source ends: the pass goes on to mark
    out, err = paused.communicate(timeout=60)
    assert paused.returncode == 1, (out, err)
    # Whichever saw it first: the woken pass's check, or its lease renewal.
    assert b"lease was not renewed" in err or b"lease was lost" in err, err
    assert (
        requests.get(f"{nodes[0].url}/v1/blobs/{digest}", timeout=30).content == doomed
    )
