"""``POST /v1/admin/heal`` and the operator metrics on ``/metrics``."""

from __future__ import annotations

import io
import json
import re
import threading
from datetime import timedelta

import pytest

from blobstore import Store
from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore.clock import utcnow
from blobstore.config import Token
from blobstore.errors import RefSourceError
from blobstore.refsources import IterableRefSource
from blobstore.store import HEAL_LAST_RUN
from blobstore_api.native.admin import _HealStream
from tests.api.conftest import ADMIN_TOKEN
from tests.api.conftest import WRITE_TOKEN
from tests.api.conftest import error_code
from tests.api.conftest import make_settings
from tests.erasure_helpers import delete_shard
from tests.erasure_helpers import make_set
from tests.erasure_helpers import shard_drive
from tests.helpers import hash_of

WAIT = 30


class GatedStore(Store):
    """Calls ``gate(report)`` before each progress callback of a heal."""

    gate = staticmethod(lambda report: None)

    def heal(self, hash=None, progress=None):
        def gated(report, name):
            self.gate(report)
            if progress is not None:
                progress(report, name)

        return super().heal(hash, gated)


@pytest.fixture
def erasure_store(tmp_path):
    backend = make_set(tmp_path / "set", 6, 2, fsync=False)
    with GatedStore(SQLiteCatalog(tmp_path / "catalog.db"), backend) as store:
        yield store


def put(store: Store, data: bytes) -> tuple[str, str]:
    h = store.put(io.BytesIO(data)).hash
    return h, store.stat(h).name


def ndjson(result) -> list[dict]:
    assert result.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in result.text.splitlines()]


def test_heal_one_blob(make_client, erasure_store):
    h, name = put(erasure_store, b"heal me" * 1000)
    delete_shard(erasure_store.backend, name, 2)
    client = make_client(erasure_store)
    result = client.simulate_post("/v1/admin/heal", params={"hash": h})
    assert result.status_code == 200
    assert result.json["ok"] and result.json["healed"] == 1
    assert result.json["shards_rebuilt"] == 1
    assert shard_drive(erasure_store.backend, name, 2).shard_path(name).exists()
    missing = client.simulate_post(
        "/v1/admin/heal", params={"hash": hash_of(b"never stored")}
    )
    assert missing.status_code == 404
    bad = client.simulate_post("/v1/admin/heal", params={"hash": "xyz"})
    assert bad.status_code == 400
    # A blank hash is a bad hash, never "heal everything".
    blank = client.simulate_post("/v1/admin/heal", query_string="hash=")
    assert blank.status_code == 400 and "implausible hash" in blank.json["message"]


def test_heal_all_streams_progress_and_a_summary(make_client, erasure_store):
    names = [put(erasure_store, b"blob %d " % i * 500)[1] for i in range(3)]
    for shard, name in enumerate(names):
        delete_shard(erasure_store.backend, name, shard)
    lines = ndjson(make_client(erasure_store).simulate_post("/v1/admin/heal"))
    assert lines[0]["progress"]["scanned"] == 1
    assert lines[0]["progress"]["total"] == 3
    assert all("progress" in line for line in lines[:-1])
    summary = lines[-1]["summary"]
    assert summary["ok"] and (summary["scanned"], summary["healed"]) == (3, 3)
    assert erasure_store.catalog.get_state(HEAL_LAST_RUN)["healed"] == 3


def test_heal_all_reports_unrecoverable_blobs_by_hash(make_client, erasure_store):
    h, name = put(erasure_store, b"lost" * 300)
    for shard in range(3):
        delete_shard(erasure_store.backend, name, shard)
    summary = ndjson(make_client(erasure_store).simulate_post("/v1/admin/heal"))[-1]
    assert summary["summary"]["unrecoverable"] == [name]
    assert summary["summary"]["hashes"] == {name: h}
    assert not summary["summary"]["ok"]


def test_no_redundancy_is_a_bad_request(make_client, local_store):
    result = make_client(local_store).simulate_post("/v1/admin/heal")
    assert result.status_code == 400 and error_code(result) == "bad_params"
    assert "backend local has no redundancy to heal" in result.json["message"]


def test_heal_needs_an_admin_token(make_client, erasure_store):
    client = make_client(
        erasure_store,
        make_settings((Token(WRITE_TOKEN, "read-write"), Token(ADMIN_TOKEN, "admin"))),
    )
    write = {"Authorization": f"Bearer {WRITE_TOKEN}"}
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert client.simulate_post("/v1/admin/heal", headers=write).status_code == 403
    assert client.simulate_post("/v1/admin/heal", headers=admin).status_code == 200


def test_a_client_that_hangs_up_stops_the_heal(erasure_store):
    for i in range(3):
        put(erasure_store, b"more %d" % i)
    stream = _HealStream(erasure_store)
    # The heal waits before its second blob until the response is closed.
    erasure_store.gate = lambda report: report.scanned < 2 or stream._stop.wait(WAIT)
    lines = iter(stream)
    assert json.loads(next(lines))["progress"]["scanned"] == 1
    stream.close()  # what the server does when the client went away
    assert not stream._thread.is_alive()
    assert erasure_store.catalog.get_state(HEAL_LAST_RUN) is None  # it stopped
    assert not [t for t in threading.enumerate() if t.name == "blobstore-heal"]


# -- metrics --------------------------------------------------------------------


def metric(text: str, name: str) -> float | None:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def test_gc_metrics_come_from_the_catalog(make_client, local_store):
    client = make_client(local_store)
    text = client.simulate_get("/metrics").text
    # Absent until a pass ran: alert on absent(...) to catch a GC never run.
    assert metric(text, "blobstore_gc_last_success_timestamp_seconds") is None

    local_store.put(io.BytesIO(b"garbage" * 10), now=utcnow() - timedelta(hours=1))
    local_store.gc()
    text = client.simulate_get("/metrics").text
    finished = metric(text, "blobstore_gc_last_success_timestamp_seconds")
    assert finished is not None and abs(finished - utcnow().timestamp()) < 600
    assert metric(text, "blobstore_gc_last_deleted_blobs") == 1
    assert metric(text, "blobstore_gc_last_reclaimed_bytes") == 70
    assert metric(text, "blobstore_gc_last_errors") == 0
    assert 'blobstore_gc_last_uploads_expired{kind="s3"} 0.0' in text
    assert metric(text, "blobstore_gc_last_failure_timestamp_seconds") is None

    def broken():
        raise ConnectionError("down")
        yield  # pragma: no cover

    with pytest.raises(RefSourceError):
        local_store.gc(ref_sources=[IterableRefSource(broken())])
    text = client.simulate_get("/metrics").text
    assert metric(text, "blobstore_gc_last_failure_timestamp_seconds") is not None
    assert metric(text, "blobstore_gc_last_deleted_blobs") == 1  # the last success


def test_drive_and_job_metrics(make_client, local_store):
    from blobstore.checker import check

    local_store.put(io.BytesIO(b"checked"))
    check(local_store)
    text = make_client(local_store).simulate_get("/metrics").text
    drive = str(local_store.backend.drives[0].path)
    assert f'blobstore_backend_drive_online{{drive="{drive}"}} 1.0' in text
    assert metric(text, "blobstore_backend_up") == 1
    assert metric(text, "blobstore_backend_free_bytes") > 0
    assert metric(text, "blobstore_backend_needs_heal_blobs") == 0
    assert 'blobstore_check_last_blobs{result="ok"} 1.0' in text
    assert metric(text, "blobstore_quarantined_blobs") == 0
    assert metric(text, "blobstore_heal_last_timestamp_seconds") is None
