"""Probes, stats, metrics, authentication, and the error statuses that come
from the backend (503, 507, 500) or from routing (404, 405)."""

from __future__ import annotations

import pytest

from blobstore.backends.memory import MemoryBackend
from blobstore.config import Token
from blobstore.errors import InsufficientStorage
from blobstore.errors import Unavailable
from blobstore.hashing import hash_bytes
from tests.api.conftest import ADMIN_TOKEN
from tests.api.conftest import READ_TOKEN
from tests.api.conftest import WRITE_TOKEN
from tests.api.conftest import error_code
from tests.api.conftest import make_settings

DATA = b"some bytes"
HASH = hash_bytes(DATA)


class DownBackend(MemoryBackend):
    """A backend whose storage cannot be reached."""

    def check(self) -> None:
        raise Unavailable("swift at 10.0.0.1 is not answering")

    def put(self, name, stream, size=None) -> None:
        raise Unavailable("swift at 10.0.0.1 is not answering")


class FullBackend(MemoryBackend):
    def put(self, name, stream, size=None) -> None:
        stream.read(10)
        raise InsufficientStorage("no space left on /srv/blobs")


class BrokenBackend(MemoryBackend):
    def open(self, name):
        raise RuntimeError("a bug with a secret path /srv/x in it")


def test_healthz_and_readyz(client):
    assert client.simulate_get("/healthz").json == {"status": "ok"}
    assert client.simulate_get("/readyz").json == {"status": "ready"}


def test_unreachable_backend_is_503(make_client):
    client = make_client(backend=DownBackend())
    assert client.simulate_get("/healthz").status_code == 200
    ready = client.simulate_get("/readyz")
    assert ready.status_code == 503
    assert error_code(ready) == "unavailable"
    assert "not answering" in ready.json["message"]
    put = client.simulate_put(f"/v1/blobs/{HASH}", body=DATA)
    assert put.status_code == 503
    assert put.headers["Retry-After"].isdigit()


def test_full_backend_is_507(make_client):
    client = make_client(backend=FullBackend())
    result = client.simulate_post("/v1/blobs", body=DATA)
    assert result.status_code == 507
    assert error_code(result) == "insufficient_storage"


def test_unexpected_errors_are_500_without_details(make_client, caplog):
    client = make_client(backend=BrokenBackend())
    client.simulate_put(f"/v1/blobs/{HASH}", body=DATA)
    result = client.simulate_get(f"/v1/blobs/{HASH}")
    assert result.status_code == 500
    assert result.json == {"code": "internal_error", "message": "internal server error"}
    assert "a bug with a secret path" in caplog.text  # logged, not sent


def test_stats(client, store):
    client.simulate_put(f"/v1/blobs/{HASH}", body=DATA)
    stats = client.simulate_get("/v1/stats").json
    assert stats == {"blobs": 1, "bytes": len(DATA), "composites": 0, "backend": {}}


def test_stats_include_backend_figures(make_client, local_store):
    stats = make_client(local_store).simulate_get("/v1/stats").json
    assert stats["backend"]["free_bytes"] > 0


def test_metrics(client):
    client.simulate_put(f"/v1/blobs/{HASH}", body=DATA)
    client.simulate_get(f"/v1/blobs/{HASH}")
    client.simulate_get(f"/v1/blobs/{hash_bytes(b'missing')}")
    client.simulate_get("/no/such/route")
    text = client.simulate_get("/metrics").text
    route = 'route="/v1/blobs/{hash}"'
    assert (
        f'blobstore_http_requests_total{{method="PUT",{route},status="201"}} 1.0'
        in text
    )
    assert (
        f'blobstore_http_requests_total{{method="GET",{route},status="200"}} 1.0'
        in text
    )
    assert (
        f'blobstore_http_requests_total{{method="GET",{route},status="404"}} 1.0'
        in text
    )
    assert 'route="unmatched",status="404"' in text
    assert f"blobstore_http_received_bytes_total{{{route}}} {float(len(DATA))}" in text
    assert f"blobstore_http_sent_bytes_total{{{route}}}" in text
    assert (
        f'blobstore_http_request_duration_seconds_count{{method="GET",{route}}} 2.0'
        in text
    )
    assert "blobstore_blobs 1.0" in text
    assert f"blobstore_blob_bytes {float(len(DATA))}" in text
    assert "blobstore_catalog_up 1.0" in text


def test_unknown_route_and_method_are_json(client):
    missing = client.simulate_get("/v2/blobs")
    assert missing.status_code == 404
    assert error_code(missing) == "not_found"
    wrong = client.simulate_delete(f"/v1/blobs/{HASH}")
    assert wrong.status_code == 405
    assert error_code(wrong) == "method_not_allowed"


# -- auth --------------------------------------------------------------------


@pytest.fixture
def secured(make_client):
    tokens = (
        Token(READ_TOKEN, "read"),
        Token(WRITE_TOKEN, "read-write"),
        Token(ADMIN_TOKEN, "admin"),
    )
    return make_client(settings=make_settings(tokens))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("not-a-known-token-at-all"),
        {"Authorization": f"Basic {WRITE_TOKEN}"},
        {"Authorization": "Bearer"},
        bearer(WRITE_TOKEN[:-1]),
    ],
)
def test_missing_or_unknown_token_is_401(secured, headers):
    result = secured.simulate_put(f"/v1/blobs/{HASH}", body=DATA, headers=headers)
    assert result.status_code == 401
    assert error_code(result) == "unauthorized"
    assert result.headers["WWW-Authenticate"].startswith("Bearer")


def test_access_levels(secured):
    put = f"/v1/blobs/{HASH}"
    read, write, admin = bearer(READ_TOKEN), bearer(WRITE_TOKEN), bearer(ADMIN_TOKEN)

    denied = secured.simulate_put(put, body=DATA, headers=read)
    assert denied.status_code == 403
    assert error_code(denied) == "forbidden"
    assert secured.simulate_put(put, body=DATA, headers=write).status_code == 201
    assert secured.simulate_put(put, body=DATA, headers=admin).status_code == 200

    for headers in (read, write, admin):
        assert secured.simulate_get(put, headers=headers).content == DATA
        assert secured.simulate_get("/metrics", headers=headers).status_code == 200
    assert secured.simulate_post("/v1/uploads", headers=read).status_code == 403
    assert secured.simulate_post("/v1/uploads", headers=write).status_code == 201

    # Stats expose backend internals: operators only.
    assert secured.simulate_get("/v1/stats", headers=write).status_code == 403
    assert secured.simulate_get("/v1/stats", headers=admin).status_code == 200


def test_probes_are_public(secured):
    assert secured.simulate_get("/healthz").status_code == 200
    assert secured.simulate_get("/readyz").status_code == 200
    assert secured.simulate_get("/metrics").status_code == 401


def test_open_service_allows_everything(client):
    assert client.simulate_put(f"/v1/blobs/{HASH}", body=DATA).status_code == 201
    assert client.simulate_get("/v1/stats").status_code == 200
