"""/v1/uploads: native multipart uploads over HTTP, and every way to get
them wrong. Limits are tiny (see conftest): parts of 1-4 KiB, 8 parts."""

from __future__ import annotations

import json
import os
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from blobstore.hashing import hash_bytes
from tests.api.conftest import MAX_PART
from tests.api.conftest import MAX_PARTS
from tests.api.conftest import MIN_PART
from tests.api.conftest import chunked
from tests.api.conftest import error_code

# Larger than a part may be: it has to go in parts.
WHOLE = os.urandom(3 * MAX_PART + 1000)
PARTS = [WHOLE[i : i + MAX_PART] for i in range(0, len(WHOLE), MAX_PART)]
OFFSETS = [i * MAX_PART for i in range(len(PARTS))]


def new_upload(client, **params) -> str:
    result = client.simulate_post("/v1/uploads", params=params)
    assert result.status_code == 201, result.text
    return result.json["id"]


def put_part(client, upload_id, n, data, *, hash=None, offset=None, **kw):
    params = {"hash": hash or hash_bytes(data)}
    if offset is not None:
        params["offset"] = str(offset)
    return client.simulate_put(
        f"/v1/uploads/{upload_id}/parts/{n}", params=params, body=data, **kw
    )


def finish(client, upload_id, hashes):
    return client.simulate_post(
        f"/v1/uploads/{upload_id}/finish",
        json={"parts": [{"hash": h} for h in hashes]},
    )


def test_new_upload_reports_limits_and_expiry(client):
    before = datetime.now(UTC)
    result = client.simulate_post("/v1/uploads", params={"expires": "3600"})
    assert result.status_code == 201
    body = result.json
    assert set(body) == {"id", "expires", "min_part_size", "max_part_size", "max_parts"}
    assert (body["min_part_size"], body["max_part_size"], body["max_parts"]) == (
        MIN_PART,
        MAX_PART,
        MAX_PARTS,
    )
    assert result.headers["Location"] == f"/v1/uploads/{body['id']}"
    expires = datetime.fromisoformat(body["expires"])
    assert before + timedelta(minutes=59) < expires < before + timedelta(minutes=61)
    # Without expires: the maximum (24 h by default).
    default = datetime.fromisoformat(
        client.simulate_post("/v1/uploads").json["expires"]
    )
    assert default > before + timedelta(hours=23)


@pytest.mark.parametrize(
    "expires",
    # 9999999999999s: past year 9999 from now, once a 500 (schemathesis).
    ["soon", "-5", "0", str(25 * 3600), "9999999999999s", "99999999999999d"],
)
def test_new_upload_with_bad_expiry_is_400(client, expires):
    result = client.simulate_post("/v1/uploads", params={"expires": expires})
    assert result.status_code == 400
    assert error_code(result) == "bad_params"


def test_multipart_upload_of_a_blob_bigger_than_a_part(client, store):
    upload_id = new_upload(client)
    # Out of order, with offsets, as parallel clients would.
    for n in reversed(range(len(PARTS))):
        result = put_part(client, upload_id, n, PARTS[n], offset=OFFSETS[n])
        assert result.status_code == 200, result.text
        assert result.json == {
            "part": n,
            "hash": hash_bytes(PARTS[n]),
            "size": len(PARTS[n]),
            "stored": True,
        }
    info = client.simulate_get(f"/v1/uploads/{upload_id}").json
    assert info["id"] == upload_id
    assert info["hash"] is None
    assert info["owner"] is None
    assert info["parts"] == [
        {"hash": hash_bytes(p), "size": len(p), "offset": o, "complete": True}
        for p, o in zip(PARTS, OFFSETS, strict=True)
    ]

    done = finish(client, upload_id, [hash_bytes(p) for p in PARTS])
    assert done.status_code == 200, done.text
    assert done.json == {
        "hash": hash_bytes(WHOLE),
        "size": len(WHOLE),
        "index": {
            "hashes": [hash_bytes(p) for p in PARTS],
            "sizes": [len(p) for p in PARTS],
        },
    }
    assert client.simulate_get(f"/v1/uploads/{upload_id}").json["hash"] == hash_bytes(
        WHOLE
    )
    # Finishing again gives the same answer.
    assert finish(client, upload_id, [hash_bytes(p) for p in PARTS]).json == done.json

    # The whole blob is first-class: GET, HEAD and ranges across parts.
    whole = f"/v1/blobs/{hash_bytes(WHOLE)}"
    assert client.simulate_get(whole).content == WHOLE
    assert client.simulate_head(whole).headers["Content-Length"] == str(len(WHOLE))
    across = f"bytes={MAX_PART - 10}-{2 * MAX_PART + 9}"
    ranged = client.simulate_get(whole, headers={"Range": across})
    assert ranged.status_code == 206
    assert ranged.content == WHOLE[MAX_PART - 10 : 2 * MAX_PART + 10]
    tail = client.simulate_get(whole, headers={"Range": "bytes=-1500"})
    assert tail.content == WHOLE[-1500:]


def test_sequential_parts_without_offsets(client):
    upload_id = new_upload(client)
    for n, part in enumerate(PARTS):
        assert put_part(client, upload_id, n, part).status_code == 200
    assert finish(client, upload_id, [hash_bytes(p) for p in PARTS]).status_code == 200


def test_reuploading_a_complete_part_is_not_stored_again(client):
    upload_id = new_upload(client)
    assert put_part(client, upload_id, 0, PARTS[0]).json["stored"] is True
    assert put_part(client, upload_id, 0, PARTS[0]).json["stored"] is False


def test_owner_and_delete(client):
    upload_id = new_upload(client)
    put_part(client, upload_id, 0, PARTS[0])
    path = f"/v1/uploads/{upload_id}/owner"
    # Not finished yet: nothing to own.
    early = client.simulate_put(path, json={"owner": "charm-1", "expires": 600})
    assert early.status_code == 409
    assert error_code(early) == "conflict"
    finish(client, upload_id, [hash_bytes(PARTS[0])])

    owned = client.simulate_put(path, json={"owner": "charm-1", "expires": "10m"})
    assert owned.status_code == 200
    assert owned.json["owner"] == "charm-1"
    other = client.simulate_put(path, json={"owner": "charm-2", "expires": 600})
    assert other.status_code == 409
    assert error_code(other) == "upload_in_use"
    for bad in (
        {"owner": "", "expires": 600},
        {"owner": "x"},
        {"owner": "x", "expires": "never"},
        {"owner": 5, "expires": 600},
        {"owner": "charm-1", "expires": 48 * 3600},
    ):
        result = client.simulate_put(path, json=bad)
        assert result.status_code == 400, bad

    assert client.simulate_delete(f"/v1/uploads/{upload_id}").status_code == 204
    gone = client.simulate_get(f"/v1/uploads/{upload_id}")
    assert gone.status_code == 404
    assert error_code(gone) == "upload_not_found"
    # Removing what is gone succeeds (idempotent).
    assert client.simulate_delete(f"/v1/uploads/{upload_id}").status_code == 204


@pytest.mark.parametrize(
    ("part", "params", "status"),
    [
        ("x", {"hash": hash_bytes(PARTS[0])}, 400),  # part number not a number
        ("-1", {"hash": hash_bytes(PARTS[0])}, 400),
        (str(MAX_PARTS), {"hash": hash_bytes(PARTS[0])}, 400),  # too high
        ("0", {}, 400),  # no hash
        ("0", {"hash": "nothex"}, 400),
        ("0", {"hash": hash_bytes(PARTS[0]), "offset": "-3"}, 400),
        ("0", {"hash": hash_bytes(PARTS[0]), "offset": "x"}, 400),
        ("0", {"hash": hash_bytes(PARTS[0]), "offset": "5"}, 400),  # part 0 at 5
        ("1", {"hash": hash_bytes(PARTS[0])}, 400),  # no offset, no part 0 yet
    ],
)
def test_bad_part_parameters_are_400(client, store, part, params, status):
    upload_id = new_upload(client)
    result = client.simulate_put(
        f"/v1/uploads/{upload_id}/parts/{part}", params=params, body=PARTS[0]
    )
    assert result.status_code == status, result.text
    assert error_code(result) == "bad_params"
    assert store.stats().blobs == 0


def test_part_needs_content_length(client, store):
    upload_id = new_upload(client)
    result = chunked(
        client,
        "PUT",
        f"/v1/uploads/{upload_id}/parts/0",
        PARTS[0],
        params={"hash": hash_bytes(PARTS[0])},
    )
    assert result.status_code == 411
    assert error_code(result) == "length_required"
    assert store.stats().blobs == 0


def test_part_too_big_or_empty_is_400(client):
    upload_id = new_upload(client)
    big = b"x" * (MAX_PART + 1)
    assert put_part(client, upload_id, 0, big).status_code == 400
    empty = put_part(
        client, upload_id, 0, b"", hash=hash_bytes(b""), headers={"Content-Length": "0"}
    )
    assert empty.status_code == 400


def test_small_part_followed_by_another_is_400(client):
    upload_id = new_upload(client)
    small = b"s" * (MIN_PART - 1)
    assert put_part(client, upload_id, 0, small, offset=0).status_code == 200
    result = put_part(client, upload_id, 1, PARTS[1], offset=len(small))
    assert result.status_code == 400
    assert "too small" in result.json["message"]


def test_part_with_wrong_hash_is_400_and_not_complete(client, store):
    upload_id = new_upload(client)
    result = put_part(client, upload_id, 0, PARTS[0], hash=hash_bytes(b"other"))
    assert result.status_code == 400
    assert error_code(result) == "hash_mismatch"
    part = client.simulate_get(f"/v1/uploads/{upload_id}").json["parts"][0]
    assert part["complete"] is False
    assert store.stats().blobs == 0


def test_short_part_body_is_400(client, store):
    upload_id = new_upload(client)
    result = put_part(
        client,
        upload_id,
        0,
        PARTS[0][:100],
        hash=hash_bytes(PARTS[0]),
        headers={"Content-Length": str(len(PARTS[0]))},
    )
    assert result.status_code == 400
    assert error_code(result) == "size_mismatch"
    assert store.stats().blobs == 0


def test_same_slot_with_other_content_is_409(client):
    upload_id = new_upload(client)
    put_part(client, upload_id, 0, PARTS[0])
    result = put_part(client, upload_id, 0, PARTS[1])
    assert result.status_code == 409
    assert error_code(result) == "part_conflict"


def test_new_part_after_finish_is_409(client):
    upload_id = new_upload(client)
    put_part(client, upload_id, 0, PARTS[0])
    finish(client, upload_id, [hash_bytes(PARTS[0])])
    result = put_part(client, upload_id, 1, PARTS[1], offset=len(PARTS[0]))
    assert result.status_code == 409
    assert error_code(result) == "upload_complete"


def test_unknown_upload_is_404_everywhere(client):
    missing = "no-such-upload"
    assert client.simulate_get(f"/v1/uploads/{missing}").status_code == 404
    assert put_part(client, missing, 0, PARTS[0]).status_code == 404
    assert finish(client, missing, [hash_bytes(PARTS[0])]).status_code == 404
    owner = client.simulate_put(
        f"/v1/uploads/{missing}/owner", json={"owner": "x", "expires": 60}
    )
    assert owner.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b"{}",
        b'{"parts": {}}',
        b'{"parts": [{"hash": 5}]}',
        b'{"parts": ["abc"]}',
    ],
)
def test_finish_with_a_bad_body_is_400(client, body):
    upload_id = new_upload(client)
    put_part(client, upload_id, 0, PARTS[0])
    result = client.simulate_post(f"/v1/uploads/{upload_id}/finish", body=body)
    assert result.status_code == 400
    assert error_code(result) == "bad_params"


def test_finish_with_wrong_parts_is_400(client):
    upload_id = new_upload(client)
    put_part(client, upload_id, 0, PARTS[0])
    put_part(client, upload_id, 1, PARTS[1])
    wrong_order = finish(
        client, upload_id, [hash_bytes(PARTS[1]), hash_bytes(PARTS[0])]
    )
    assert wrong_order.status_code == 400
    too_few = finish(client, upload_id, [hash_bytes(PARTS[0])])
    assert too_few.status_code == 400
    assert "part count mismatch" in too_few.json["message"]


def test_finish_with_a_missing_part_is_400(client):
    upload_id = new_upload(client)
    put_part(client, upload_id, 0, PARTS[0])
    put_part(client, upload_id, 2, PARTS[2], offset=OFFSETS[2])
    result = finish(client, upload_id, [hash_bytes(p) for p in PARTS[:3]])
    assert result.status_code == 400


def test_json_body_too_large_is_413(client):
    upload_id = new_upload(client)
    huge = json.dumps({"parts": [{"hash": "0" * 96}] * 30000}).encode()
    result = client.simulate_post(f"/v1/uploads/{upload_id}/finish", body=huge)
    assert result.status_code == 413
