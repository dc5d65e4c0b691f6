"""PUT/POST/GET/HEAD /v1/blobs: hashes verified while streaming, nothing
stored on a bad body, ranges, conditional requests."""

from __future__ import annotations

import io
import os
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from email.utils import format_datetime
from wsgiref.util import FileWrapper

import falcon.testing
import pytest

from blobstore.hashing import CHUNK_SIZE
from blobstore.hashing import hash_bytes
from blobstore_api.streaming import FileRange
from tests.api.conftest import MAX_BODY
from tests.api.conftest import BrokenInput
from tests.api.conftest import chunked
from tests.api.conftest import error_code
from tests.api.conftest import streamed

DATA = bytes(range(256)) * 40  # 10240 bytes
HASH = hash_bytes(DATA)


def assert_nothing_stored(store) -> None:
    assert store.stats().blobs == 0
    assert list(store.backend.list()) == []


@pytest.fixture
def stored(client):
    assert client.simulate_put(f"/v1/blobs/{HASH}", body=DATA).status_code == 201
    return client


# -- put ------------------------------------------------------------------------


def test_put_by_hash_creates_then_dedups(client, store):
    first = client.simulate_put(f"/v1/blobs/{HASH}", body=DATA)
    assert first.status_code == 201
    assert first.json == {"hash": HASH, "size": len(DATA)}
    assert first.headers["Location"] == f"/v1/blobs/{HASH}"
    again = client.simulate_put(f"/v1/blobs/{HASH}", body=DATA)
    assert again.status_code == 200
    assert again.json == {"hash": HASH, "size": len(DATA)}
    assert store.stats().blobs == 1
    assert len(list(store.backend.list())) == 1


def test_put_chunked_body_without_length(client, store):
    result = chunked(client, "PUT", f"/v1/blobs/{HASH}", DATA)
    assert result.status_code == 201
    with store.open(HASH) as blob:
        assert blob.read() == DATA


def test_put_empty_blob(client):
    empty = hash_bytes(b"")
    assert client.simulate_put(f"/v1/blobs/{empty}").status_code == 201
    got = client.simulate_get(f"/v1/blobs/{empty}")
    assert got.status_code == 200
    assert got.content == b""
    assert got.headers["Content-Length"] == "0"


@pytest.mark.parametrize(
    "bad", ["abc", HASH.upper(), HASH[:-1], HASH + "0", "g" * 96, "x" * 200]
)
def test_put_implausible_hash_is_400_before_reading(client, store, bad):
    body = BrokenInput(b"", AssertionError("the body must not be read"))
    result = streamed(client, "PUT", f"/v1/blobs/{bad}", body)
    assert result.status_code == 400
    assert error_code(result) == "bad_params"
    assert_nothing_stored(store)


def test_put_wrong_hash_stores_nothing(client, store):
    result = client.simulate_put(f"/v1/blobs/{hash_bytes(b'other')}", body=DATA)
    assert result.status_code == 400
    assert error_code(result) == "hash_mismatch"
    assert_nothing_stored(store)


def test_short_body_is_400_and_stores_nothing(client, store):
    # Content-Length promises more than arrives: a client that went away.
    result = client.simulate_put(
        f"/v1/blobs/{HASH}",
        body=DATA[:-100],
        headers={"Content-Length": str(len(DATA))},
    )
    assert result.status_code == 400
    assert error_code(result) == "size_mismatch"
    assert_nothing_stored(store)


def test_body_that_cannot_be_read_is_400_and_stores_nothing(client, store):
    broken = BrokenInput(DATA[:5000], ConnectionResetError("peer reset"))
    result = streamed(client, "POST", "/v1/blobs", broken)
    assert result.status_code == 400
    assert error_code(result) == "bad_params"
    assert "ConnectionResetError" in result.json["message"]
    assert_nothing_stored(store)


def test_content_length_above_max_body_size_is_413(client, store):
    big = b"x" * (MAX_BODY + 1)
    result = client.simulate_put(f"/v1/blobs/{hash_bytes(big)}", body=big)
    assert result.status_code == 413
    assert error_code(result) == "content_too_large"
    assert_nothing_stored(store)


def test_chunked_body_above_max_body_size_is_413_and_stores_nothing(client, store):
    big = b"x" * (MAX_BODY + 1)
    result = chunked(client, "POST", "/v1/blobs", big)
    assert result.status_code == 413
    assert_nothing_stored(store)


def test_chunked_body_needs_a_server_that_delimits_it(client, store):
    result = streamed(
        client,
        "POST",
        "/v1/blobs",
        io.BytesIO(DATA),
        extras={"wsgi.input_terminated": False},
    )
    assert result.status_code == 411
    assert error_code(result) == "length_required"
    assert_nothing_stored(store)


def test_post_computes_the_hash(client, store):
    result = client.simulate_post("/v1/blobs", body=DATA)
    assert result.status_code == 201
    assert result.json == {"hash": HASH, "size": len(DATA)}
    assert client.simulate_post("/v1/blobs", body=DATA).status_code == 200
    assert chunked(client, "POST", "/v1/blobs", DATA).json["hash"] == HASH
    assert store.stats().blobs == 1


# -- get and head -------------------------------------------------------------


def test_get_streams_the_blob_with_headers(stored, store):
    result = stored.simulate_get(f"/v1/blobs/{HASH}")
    assert result.status_code == 200
    assert result.content == DATA
    h = result.headers
    assert h["Content-Length"] == str(len(DATA))
    assert h["ETag"] == f'"{HASH}"'
    assert h["Accept-Ranges"] == "bytes"
    assert h["Content-Type"] == "application/octet-stream"
    put_time = store.stat(HASH).put_time.replace(microsecond=0)
    assert h["Last-Modified"] == format_datetime(put_time, usegmt=True)


def test_head_has_the_headers_and_no_body(stored):
    result = stored.simulate_head(f"/v1/blobs/{HASH}")
    assert result.status_code == 200
    assert result.content == b""
    assert result.headers["Content-Length"] == str(len(DATA))
    assert result.headers["ETag"] == f'"{HASH}"'


def test_get_unknown_blob_is_404(client):
    for method in ("GET", "HEAD"):
        result = client.simulate_request(method, f"/v1/blobs/{HASH}")
        assert result.status_code == 404
    assert error_code(client.simulate_get(f"/v1/blobs/{HASH}")) == "blob_not_found"


def test_get_bad_hash_is_400(client):
    assert client.simulate_get("/v1/blobs/nothex").status_code == 400


# -- ranges -------------------------------------------------------------------

SIZE = len(DATA)


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),  # first bytes
        ("bytes=100-4099", 100, 4099),  # middle
        ("bytes=-10", SIZE - 10, SIZE - 1),  # suffix
        ("bytes=10000-", 10000, SIZE - 1),  # open-ended
        ("bytes=10200-99999", 10200, SIZE - 1),  # end past the end: clipped
        ("bytes=-99999", 0, SIZE - 1),  # suffix longer than the blob
        ("bytes=5-5", 5, 5),  # one byte
    ],
)
def test_range(stored, header, start, end):
    result = stored.simulate_get(f"/v1/blobs/{HASH}", headers={"Range": header})
    assert result.status_code == 206
    assert result.content == DATA[start : end + 1]
    assert result.headers["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
    assert result.headers["Content-Length"] == str(end - start + 1)
    head = stored.simulate_head(f"/v1/blobs/{HASH}", headers={"Range": header})
    assert head.status_code == 206
    assert head.headers["Content-Range"] == f"bytes {start}-{end}/{SIZE}"


@pytest.mark.parametrize(
    "header", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 9}", "bytes=-0"]
)
def test_unsatisfiable_range_is_416(stored, header):
    result = stored.simulate_get(f"/v1/blobs/{HASH}", headers={"Range": header})
    assert result.status_code == 416
    assert result.headers["Content-Range"] == f"bytes */{SIZE}"
    assert error_code(result) == "range_not_satisfiable"


@pytest.mark.parametrize(
    "header", ["bytes=0-1,5-6", "items=0-5", "bytes=9-2", "bytes=abc", "bytes=1-x"]
)
def test_unsupported_or_invalid_range_sends_everything(stored, header):
    result = stored.simulate_get(f"/v1/blobs/{HASH}", headers={"Range": header})
    assert result.status_code == 200
    assert result.content == DATA


def test_if_range(stored, store):
    etag = f'"{HASH}"'
    modified = store.stat(HASH).put_time
    for if_range, partial in [
        (etag, True),
        ('"' + "0" * 96 + '"', False),
        (f"W/{etag}", False),  # weak tags never match If-Range
        (format_datetime(modified.replace(microsecond=0), usegmt=True), True),
        (format_datetime(modified - timedelta(days=1), usegmt=True), False),
        ("not a date", False),
    ]:
        result = stored.simulate_get(
            f"/v1/blobs/{HASH}", headers={"Range": "bytes=0-9", "If-Range": if_range}
        )
        assert result.status_code == (206 if partial else 200), if_range
        assert result.content == (DATA[:10] if partial else DATA)


def test_empty_blob_has_no_satisfiable_range(client):
    empty = hash_bytes(b"")
    client.simulate_put(f"/v1/blobs/{empty}")
    result = client.simulate_get(f"/v1/blobs/{empty}", headers={"Range": "bytes=0-"})
    assert result.status_code == 416


# -- conditional requests ------------------------------------------------------


def http_date(t: datetime) -> str:
    return format_datetime(t.astimezone(UTC), usegmt=True)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"If-None-Match": f'"{HASH}"'}, 304),
        ({"If-None-Match": f'W/"{HASH}"'}, 304),  # weak comparison
        ({"If-None-Match": "*"}, 304),
        ({"If-None-Match": f'"{"0" * 96}", "{HASH}"'}, 304),
        ({"If-None-Match": f'"{"0" * 96}"'}, 200),
        ({"If-Match": f'"{HASH}"'}, 200),
        ({"If-Match": "*"}, 200),
        ({"If-Match": f'"{"0" * 96}"'}, 412),
        ({"If-Match": f'W/"{HASH}"'}, 412),  # strong comparison
        ({"If-Modified-Since": "FUTURE"}, 304),
        ({"If-Modified-Since": "PAST"}, 200),
        ({"If-Unmodified-Since": "PAST"}, 412),
        ({"If-Unmodified-Since": "FUTURE"}, 200),
        # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
        ({"If-None-Match": f'"{"0" * 96}"', "If-Modified-Since": "FUTURE"}, 200),
        # If-Match wins over If-Unmodified-Since.
        ({"If-Match": f'"{HASH}"', "If-Unmodified-Since": "PAST"}, 200),
        # A date that is not an HTTP-date is ignored (RFC 9110 13.1.3,
        # 13.1.4), not a 400: found by schemathesis.
        ({"If-Modified-Since": ""}, 200),
        ({"If-Modified-Since": "yesterday"}, 200),
        ({"If-Unmodified-Since": ""}, 200),
        ({"If-Unmodified-Since": "Mon, 32 Foo 2024 25:00:00 GMT"}, 200),
        ({"If-Unmodified-Since": "0"}, 200),
    ],
)
def test_conditional_get(stored, headers, status):
    now = datetime.now(UTC)
    dates = {
        "FUTURE": http_date(now + timedelta(hours=1)),
        "PAST": http_date(now - timedelta(hours=1)),
    }
    headers = {k: dates.get(v, v) for k, v in headers.items()}
    for method in ("GET", "HEAD"):
        result = stored.simulate_request(method, f"/v1/blobs/{HASH}", headers=headers)
        assert result.status_code == status, (method, headers)
        if status == 304:
            assert result.content == b""
            assert result.headers["ETag"] == f'"{HASH}"'
        if status == 412:
            assert result.headers["ETag"] == f'"{HASH}"'
        if status == 200 and method == "GET":
            assert result.content == DATA


# -- bodies served from files ------------------------------------------------------


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [
        (None, 0, SIZE - 1),
        ("bytes=100-199", 100, 199),
        ("bytes=-7", SIZE - 7, SIZE - 1),
    ],
)
def test_local_backend_serves_through_the_file_wrapper(
    make_client, local_store, range_header, start, end
):
    client = make_client(local_store)
    assert client.simulate_put(f"/v1/blobs/{HASH}", body=DATA).status_code == 201
    headers = {"Range": range_header} if range_header else {}
    wrapped = []

    def file_wrapper(filelike, block_size):
        wrapped.append(filelike)
        return FileWrapper(filelike, block_size)

    result = client.simulate_get(
        f"/v1/blobs/{HASH}", headers=headers, extras={"wsgi.file_wrapper": file_wrapper}
    )
    assert result.content == DATA[start : end + 1]
    assert len(wrapped) == 1 and isinstance(wrapped[0], FileRange)


def test_file_range_sets_the_os_position_and_reads_only_the_range(tmp_path):
    # gunicorn's sendfile starts at the descriptor's OS position and sends
    # Content-Length bytes; its fallback reads the file-like to EOF.
    path = tmp_path / "f"
    path.write_bytes(DATA)
    f = open(path, "rb")  # noqa: SIM115 - FileRange closes it
    f.read(4096)  # move Python's buffered position: FileRange must not care
    fr = FileRange(f, f.fileno(), 1000, 50)
    assert os.lseek(fr.fileno(), 0, os.SEEK_CUR) == 1000
    assert fr.read(30) + fr.read(30) + fr.read(30) == DATA[1000:1050]
    assert os.lseek(fr.fileno(), 0, os.SEEK_CUR) == 1000  # pread: not moved
    fr.close()
    assert f.closed


def test_body_streams_in_bounded_chunks(client, store):
    big = os.urandom(CHUNK_SIZE * 2 + 123)
    store.put(io.BytesIO(big))
    env = falcon.testing.create_environ(f"/v1/blobs/{hash_bytes(big)}")
    start_response = falcon.testing.StartResponseMock()
    body = client.app(env, start_response)
    chunks = list(body)
    body.close()
    assert start_response.status == "200 OK"
    assert b"".join(chunks) == big
    assert max(len(c) for c in chunks) <= CHUNK_SIZE
