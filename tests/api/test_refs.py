"""/v1/refs: named refs (GC roots), names with slashes, paging."""

from __future__ import annotations

import pytest

from blobstore.hashing import hash_bytes
from tests.api.conftest import error_code

A = b"blob a"
B = b"blob b"


@pytest.fixture
def blobs(client):
    for data in (A, B):
        client.simulate_put(f"/v1/blobs/{hash_bytes(data)}", body=data)
    return client


def test_put_get_replace_delete(blobs):
    client = blobs
    created = client.simulate_put("/v1/refs/releases/1.0", json={"hash": hash_bytes(A)})
    assert created.status_code == 201
    assert created.json["name"] == "releases/1.0"
    assert created.json["hash"] == hash_bytes(A)
    got = client.simulate_get("/v1/refs/releases/1.0")
    assert got.status_code == 200
    assert got.json["hash"] == hash_bytes(A)
    assert got.json["mtime"].endswith("Z")

    replaced = client.simulate_put(
        "/v1/refs/releases/1.0", json={"hash": hash_bytes(B)}
    )
    assert replaced.status_code == 200
    assert client.simulate_get("/v1/refs/releases/1.0").json["hash"] == hash_bytes(B)

    assert client.simulate_delete("/v1/refs/releases/1.0").status_code == 204
    gone = client.simulate_get("/v1/refs/releases/1.0")
    assert gone.status_code == 404
    assert error_code(gone) == "ref_not_found"
    assert client.simulate_delete("/v1/refs/releases/1.0").status_code == 404


def test_encoded_names(blobs):
    # %2F decodes to "/" and spaces are fine: the name is what the path says.
    result = blobs.simulate_put("/v1/refs/a%2Fb%20c", json={"hash": hash_bytes(A)})
    assert result.status_code == 201
    assert result.json["name"] == "a/b c"
    assert blobs.simulate_get("/v1/refs/a/b c").json["name"] == "a/b c"


@pytest.mark.parametrize(
    "path", ["a/../b", "a/%2E%2E/b", "a%2F%2e%2Fb", "a//b", "a%2F%2Fb", "a/", "%2E"]
)
def test_dot_and_empty_segments_are_400_also_percent_encoded(blobs, path):
    result = blobs.simulate_put(f"/v1/refs/{path}", json={"hash": hash_bytes(A)})
    assert result.status_code == 400
    assert error_code(result) == "bad_params"
    assert "segment" in result.json["message"]
    assert blobs.simulate_get(f"/v1/refs/{path}").status_code == 400


def test_ref_to_a_missing_blob_is_404(client):
    result = client.simulate_put("/v1/refs/x", json={"hash": hash_bytes(b"nope")})
    assert result.status_code == 404
    assert error_code(result) == "blob_not_found"


@pytest.mark.parametrize(
    "body", [b"nope", b"[]", b"{}", b'{"hash": 3}', b'{"hash": "abc"}']
)
def test_bad_ref_bodies_are_400(blobs, body):
    result = blobs.simulate_put("/v1/refs/x", body=body)
    assert result.status_code == 400
    assert error_code(result) == "bad_params"


def test_list_with_prefix_after_and_paging(blobs):
    client = blobs
    names = ["apps/a", "apps/b", "apps/c", "libs/x"]
    for name in names:
        client.simulate_put(f"/v1/refs/{name}", json={"hash": hash_bytes(A)})
    everything = client.simulate_get("/v1/refs").json
    assert [r["name"] for r in everything["refs"]] == names
    assert everything["next"] is None

    page = client.simulate_get("/v1/refs", params={"prefix": "apps/", "limit": "2"})
    assert [r["name"] for r in page.json["refs"]] == ["apps/a", "apps/b"]
    assert page.json["next"] == "apps/b"
    rest = client.simulate_get(
        "/v1/refs", params={"prefix": "apps/", "limit": "2", "after": "apps/b"}
    ).json
    assert [r["name"] for r in rest["refs"]] == ["apps/c"]
    assert rest["next"] is None


@pytest.mark.parametrize("limit", ["0", "-1", "x", "10001"])
def test_bad_limit_is_400(client, limit):
    result = client.simulate_get("/v1/refs", params={"limit": limit})
    assert result.status_code == 400
