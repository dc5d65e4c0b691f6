"""Fuzzing the native API in-process (hypothesis, bounded): whatever a client
sends -- paths, query values, headers, JSON and raw bodies -- the answer is
never a 5xx, and every error is the documented JSON shape.

Requests go through the real app (create_app over a real SQLite catalog and
local backend) with Falcon's TestClient, so a run costs milliseconds per
request and hypothesis can try many shapes. BLOBSTORE_FUZZ_EXAMPLES raises
the count for a longer run.
"""

from __future__ import annotations

import io
import json
import os
import string
from urllib.parse import quote

import falcon.testing
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from blobstore.backends.local import LocalBackend
from blobstore.hashing import hash_bytes
from blobstore_api.app import create_app
from tests.api.conftest import make_settings
from tests.api.conftest import make_store

EXAMPLES = int(os.environ.get("BLOBSTORE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

KNOWN = hash_bytes(b"known")

#: Text that tends to break parsers: separators, dots, escapes, non-ASCII.
_PIECES = [
    *(string.ascii_letters + string.digits + "/.%-_~+:?#&=;, \t"),
    *["..", "%2e", "%2F", "%00", "\u00e9", "\u2028", "\ufeff", "\x7f", "\n"],
]
nasty = st.lists(st.sampled_from(_PIECES), max_size=20).map("".join)
#: ... as a client puts it in a path: percent-encoded, except the escapes
#: it already holds (so "%2e" and "%2F" arrive as such).
segment = nasty.map(lambda text: quote(text, safe="/%"))
numberish = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(
        ["", "1.5", "0x10", "1e9", "NaN", "-0", " 7", "inf", "999999999999999999999"]
    ),
    nasty,
)
hashish = st.one_of(st.just(KNOWN), st.just(KNOWN.upper()), st.just("0" * 96), nasty)
hash_segment = st.one_of(st.just(KNOWN), st.just("0" * 96), segment)

PATHS = st.one_of(
    st.builds(lambda h: f"/v1/blobs/{h}", hash_segment),
    st.just("/v1/blobs"),
    st.just("/v1/uploads"),
    st.builds(lambda i: f"/v1/uploads/{i}", segment),
    st.builds(
        lambda i, n: f"/v1/uploads/{i}/parts/{quote(n, safe='%')}", segment, numberish
    ),
    st.builds(lambda i: f"/v1/uploads/{i}/finish", segment),
    st.builds(lambda i: f"/v1/uploads/{i}/owner", segment),
    st.just("/v1/refs"),
    st.builds(lambda n: f"/v1/refs/{n}", segment),
    st.sampled_from(["/v1/stats", "/v1/admin/heal", "/healthz", "/readyz", "/v1/x"]),
)
QUERY = st.dictionaries(
    st.sampled_from(
        [
            "hash",
            "size",
            "offset",
            "expires",
            "prefix",
            "after",
            "limit",
            "owner",
            "index",
        ]
    ),
    st.one_of(numberish, hashish),
    max_size=4,
)
HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "Range",
            "If-Range",
            "If-None-Match",
            "If-Match",
            "If-Modified-Since",
            "Content-Type",
            "Expect",
            "X-Blobstore-Hash",
        ]
    ),
    st.one_of(
        nasty,
        st.sampled_from(
            [
                "bytes=0-",
                "bytes=-1",
                "bytes=5-2",
                "bytes=0-0,2-3",
                "bytes=99999999999999999999-",
                "*",
                "application/json",
            ]
        ),
    ),
    max_size=3,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | nasty,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(nasty, inner, max_size=3)
    ),
    max_leaves=8,
)
BODIES = st.one_of(
    st.binary(max_size=64),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(
        lambda h, extra: json.dumps({"hash": h, **extra}).encode(),
        hashish,
        st.dictionaries(
            st.sampled_from(["hash", "parts", "size", "x"]), json_values, max_size=2
        ),
    ),
    st.just(b'{"a":' * 2000),  # deep nesting
)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz-native")
    store = make_store(tmp, LocalBackend(tmp / "blobs", fsync=False))
    store.put(io.BytesIO(b"known"))
    with store:
        yield falcon.testing.TestClient(create_app(store, make_settings()))


def check(result: falcon.testing.Result, method: str) -> None:
    assert result.status_code < 500, (result.status, result.text[:300])
    if result.status_code >= 400 and method != "HEAD":
        doc = json.loads(result.text)
        assert set(doc) >= {"code", "message"}, doc
        assert isinstance(doc["code"], str) and doc["code"]


@FUZZ
@given(
    method=st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"]),
    path=PATHS,
    query=QUERY,
    headers=HEADERS,
    body=BODIES,
)
def test_no_request_gets_a_5xx_or_a_shapeless_error(
    client, method, path, query, headers, body
):
    result = client.simulate_request(
        method, path, params=query, headers=headers, body=body
    )
    check(result, method)


@pytest.mark.parametrize(
    "path", ["/v1/refs/deep", "/v1/uploads/x/owner", "/v1/uploads/x/finish"]
)
def test_json_nested_too_deep_is_a_bad_request(client, path):
    """Found by the fuzzer: json.loads raised RecursionError, answered 500."""
    method = "POST" if path.endswith("/finish") else "PUT"
    result = client.simulate_request(method, path, body=b"[" * 100_000)
    assert result.status_code == 400, result.text
    assert result.json["code"] == "bad_params"
    assert "nested" in result.json["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/uploads/x/owner", b'{"owner": "\\ud800", "expires": 60}'),
        ("/v1/uploads/x/owner", b'{"owner": "a", "expires": 60, "\\udfff": 1}'),
        ("/v1/refs/r", b'{"hash": "' + KNOWN.encode() + b'", "x": ["\\udbff"]}'),
    ],
)
def test_json_naming_a_lone_surrogate_is_a_bad_request(client, path, body):
    """Found by atheris (tests/fuzz/atheris_targets.py native_json): a JSON
    escape of a lone surrogate reached SQLite as an owner, which cannot
    encode it (UnicodeEncodeError, 500). Such a body is not Unicode text."""
    result = client.simulate_put(path, body=body)
    assert result.status_code == 400, result.text
    assert result.json["code"] == "bad_params"
    assert "surrogate" in result.json["message"]


@pytest.mark.parametrize("header", ["bytes=0-\u00b9", "bytes=-\u00b9", "bytes=\u0663-"])
def test_a_range_of_non_ascii_digits_is_ignored(client, header):
    """Found by the fuzzer: "¹".isdigit() is true but int("¹") fails (500).
    RFC 9110 digits are ASCII; another range is ignored: the whole blob."""
    result = client.simulate_get(f"/v1/blobs/{KNOWN}", headers={"Range": header})
    assert result.status_code == 200
    assert result.content == b"known"
