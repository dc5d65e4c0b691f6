"""The Swift backend against a real Swift (tests/swift_server.py).

The Backend contract suite runs first; then what is Swift's own: Static
Large Objects, lazy ranged reads, streamed puts that Swift never commits
when the stream fails, token renewal, a Swift outage (also through the
Store), and the configuration's error messages.
"""

from __future__ import annotations

import base64
import hmac
import io
import os
import threading
import tomllib
import urllib.request
import uuid
from email.utils import formatdate
from pathlib import Path

import pytest
from swiftclient.client import Connection

from blobstore import Store
from blobstore.backends.swift import SwiftBackend
from blobstore.backends.swift.config import SwiftConfig
from blobstore.backends.swift.upload import BUFFER
from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore.errors import BadParams
from blobstore.errors import BlobNotFound
from blobstore.errors import HashMismatch
from blobstore.errors import SizeMismatch
from blobstore.errors import Unavailable
from blobstore.hashing import VerifyingReader
from blobstore.registry import backend_from_config
from tests.backend_contract import BackendContract
from tests.backend_contract import names
from tests.backend_contract import read_all
from tests.helpers import DataSource
from tests.helpers import FailingReader
from tests.helpers import NoSeekReader
from tests.helpers import hash_of

KIB = 1024
MIB = 1024 * KIB
SEGMENT = 512 * KIB  # the test-lowered SLO segment size


def new_container() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_backend(swift_server):
    """Build Swift backends on the test server (each in a new container
    unless told otherwise); closed after the test."""
    made = []

    def make(container: str | None = None, **overrides) -> SwiftBackend:
        config = swift_server.backend_config(container or new_container(), **overrides)
        backend = backend_from_config(config)
        assert isinstance(backend, SwiftBackend)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def swift(swift_server):
    """A plain swiftclient connection, to look at Swift behind the backend."""
    conn = Connection(swift_server.auth_url, swift_server.user, swift_server.key)
    yield conn
    conn.close()


@pytest.fixture
def outage(swift_server):
    """The proxy is running again after the test, whatever it stopped."""
    with swift_server.outage():
        yield swift_server


def stored(swift: Connection, container: str) -> list[str]:
    """Every object name in *container*, straight from Swift."""
    return [o["name"] for o in swift.get_container(container, full_listing=True)[1]]


def everything(swift: Connection, backend: SwiftBackend) -> list[str]:
    return stored(swift, backend.container) + stored(swift, backend.segments)


def verifying(data: bytes, *, claimed: bytes | None = None, size: int | None = None):
    """The Store's verifying reader over *data*, claiming the hash of
    *claimed* (default: of *data*) and *size* (default: its length)."""
    return VerifyingReader(
        io.BytesIO(data),
        len(data) if size is None else size,
        hash_of(data if claimed is None else claimed),
    )


def put_statuses(swift_server, path: str, count: int) -> list[str]:
    """The statuses of the PUTs of objects whose path starts with *path*
    (in the backend's account), once the proxy has logged *count* of them."""
    needle = f" PUT /v1/{swift_server.account}{path}"
    lines = swift_server.wait_for_access_log(needle, count)
    return [line.split()[line.split().index("PUT") + 3] for line in lines]


def proxy_logged_everything_before(swift_server, swift: Connection) -> None:
    """Return once the proxy has logged every request made before (it logs
    in order; a marker request's line comes after them)."""
    marker = f"marker-{uuid.uuid4().hex}"
    with pytest.raises(Exception, match="404"):
        swift.head_object(marker, marker)
    swift_server.wait_for_access_log(marker)


class TestSwiftBackend(BackendContract):
    @pytest.fixture
    def backend(self, make_backend):
        return make_backend()


# -- configuration ----------------------------------------------------------------


def test_registered_under_type_swift(make_backend, swift):
    backend = make_backend()
    # Both containers exist once the backend has started.
    swift.head_container(backend.container)
    swift.head_container(backend.segments)
    assert backend.segments == backend.container + "_segments"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"temp_dir": "/tmp"}, "never spools"),
        ({"bogus": 1}, "unknown Swift backend option 'bogus'"),
        ({"auth_version": 4}, "auth_version must be 1"),
        ({"auth_version": 3, "tenant": "p"}, "python-keystoneclient|Keystone"),
        ({"auth_version": 3}, "needs backend.tenant"),
        ({"segment_size": 6 << 30}, "segment_size must be an integer"),
        ({"segment_size": "1G"}, "segment_size must be an integer"),
        ({"container": "a/b"}, "invalid Swift container name"),
        ({"container": ""}, "backend.container is required"),
        ({"tenant": "a", "project": "b"}, "not both"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"segment_container": "same"}, "must differ"),
    ],
)
def test_bad_config_is_a_clear_error(overrides, message):
    # Checked before any connection is made: no server needed.
    config = {
        "auth_url": "http://127.0.0.1:9/auth/v1.0",
        "user": "u:u",
        "key": "k",
        "container": "same",
    }
    config.update(overrides)
    with pytest.raises(BadParams, match=message):
        SwiftBackend(**config)


def test_example_configs_are_valid():
    config_dir = Path(__file__).parent.parent / "config"
    table = tomllib.loads((config_dir / "swift-tempauth.toml").read_text())["backend"]
    config = SwiftConfig.from_mapping(table)
    assert config.auth_version == "1.0"
    assert config.segments == "blobstore_segments"
    table = tomllib.loads((config_dir / "swift-keystone.toml").read_text())["backend"]
    try:
        config = SwiftConfig.from_mapping(table)
    except BadParams as exc:  # only when python-keystoneclient is missing
        assert "python-keystoneclient" in str(exc)
    else:
        kwargs = config.connection_kwargs()
        assert kwargs["auth_version"] == "3"
        assert kwargs["os_options"]["project_name"] == "artifacts"
        assert kwargs["os_options"]["region_name"] == "RegionOne"


def test_missing_container_with_create_disabled(make_backend):
    backend = make_backend(create_container=False)
    with pytest.raises(Unavailable, match="does not exist"):
        backend.check()
    with pytest.raises(Unavailable, match="does not exist"):
        backend.put("x", io.BytesIO(b"x"), 1)


# -- Static Large Objects -------------------------------------------------------


def test_large_blob_round_trips_as_slo(make_backend, swift):
    backend = make_backend(segment_size=SEGMENT)
    size = 4 * SEGMENT + 12345
    backend.put("big", DataSource(size, 3), size)
    # Five segments, and one manifest in the main container.
    assert len(stored(swift, backend.segments)) == 5
    headers = swift.head_object(backend.container, "big")
    assert headers["x-static-large-object"] == "True"
    f, got = backend.open("big")
    with f:
        reader = VerifyingReader(f, size)
        reader.drain()
    assert got == size
    assert reader.hash == DataSource.digest(size, 3)
    assert [(o.name, o.size) for o in backend.list()] == [("big", size)]


def test_slo_range_reads_across_segment_boundaries_are_exact(make_backend):
    backend = make_backend(segment_size=SEGMENT)
    data = os.urandom(3 * SEGMENT + 999)
    backend.put("ranges", io.BytesIO(data), len(data))
    f, _ = backend.open("ranges")
    with f:
        for boundary in (SEGMENT, 2 * SEGMENT, 3 * SEGMENT):
            for start in (boundary - 7, boundary - 1, boundary, boundary + 1):
                f.seek(start)
                assert f.read(13) == data[start : start + 13], start
        # One read spanning three segments.
        f.seek(SEGMENT - 100)
        assert f.read(SEGMENT + 200) == data[SEGMENT - 100 : 2 * SEGMENT + 100]
        f.seek(-500, io.SEEK_END)
        assert f.read() == data[-500:]


def test_slo_ending_on_a_segment_boundary_has_no_empty_segment(make_backend, swift):
    backend = make_backend(segment_size=SEGMENT)
    data = os.urandom(3 * SEGMENT)
    backend.put("exact", NoSeekReader(data), None)
    assert len(stored(swift, backend.segments)) == 3
    assert read_all(backend, "exact") == data


def test_unknown_size_above_the_buffer_goes_as_slo(make_backend, swift):
    # Which shape a stream of unknown size needs is only known at its end,
    # so it is written in segments (here: a single one).
    backend = make_backend()
    data = os.urandom(BUFFER + 1)
    backend.put("unsized", NoSeekReader(data), None)
    assert len(stored(swift, backend.segments)) == 1
    assert read_all(backend, "unsized") == data


def test_remove_slo_leaves_no_segments(make_backend, swift):
    backend = make_backend(segment_size=SEGMENT)
    data = os.urandom(2 * SEGMENT + 1)
    backend.put("slo", io.BytesIO(data), len(data))
    backend.put("plain", io.BytesIO(b"keep me"), 7)
    backend.remove("slo")
    backend.remove("slo")
    assert everything(swift, backend) == ["plain"]
    with pytest.raises(BlobNotFound):
        backend.open("slo")


def test_slo_put_with_wrong_hash_leaves_nothing(make_backend, swift, swift_server):
    backend = make_backend(segment_size=SEGMENT)
    data = os.urandom(3 * SEGMENT + 10)
    with pytest.raises(HashMismatch):
        backend.put("badslo", verifying(data, claimed=b"other"), len(data))
    assert everything(swift, backend) == []
    # The last segment was being sent when the hash turned out wrong: Swift
    # saw the request abandoned (499) and never committed it.
    statuses = put_statuses(swift_server, f"/{backend.segments}/badslo/", 4)
    assert sorted(statuses) == ["201", "201", "201", "499"]


def test_slo_put_of_short_body_leaves_nothing(make_backend, swift):
    backend = make_backend(segment_size=SEGMENT)
    data = os.urandom(2 * SEGMENT + 100)
    with pytest.raises(SizeMismatch):
        backend.put("short", verifying(data, size=3 * SEGMENT), 3 * SEGMENT)
    assert everything(swift, backend) == []


def test_slo_put_whose_client_goes_away_leaves_nothing(make_backend, swift):
    backend = make_backend(segment_size=SEGMENT)
    data = os.urandom(2 * SEGMENT + 100)
    # The stream's own exception comes out unchanged.
    with pytest.raises(ConnectionResetError, match="client went away"):
        backend.put("gone", FailingReader(data), 3 * SEGMENT)
    assert everything(swift, backend) == []


def test_segments_without_manifest_are_listed_and_removed(make_backend, swift):
    # A put killed between its segments and its manifest leaves segments no
    # manifest points at: list() reports them under the blob's name so the
    # GC's orphan sweep can remove them.
    backend = make_backend()
    swift.put_object(backend.segments, "dead/0123/00000000", b"a" * 100)
    swift.put_object(backend.segments, "dead/0123/00000001", b"b" * 50)
    backend.put("alive", io.BytesIO(b"x"), 1)
    listed = {o.name: o.size for o in backend.list()}
    assert listed == {"alive": 1, "dead": 150}
    with pytest.raises(BlobNotFound):
        backend.open("dead")
    backend.remove("dead")
    assert everything(swift, backend) == ["alive"]


# -- streamed puts ------------------------------------------------------------------


def test_streamed_put_with_wrong_hash_is_never_committed(
    make_backend, swift, swift_server
):
    backend = make_backend()
    data = os.urandom(3 * MIB)
    with pytest.raises(HashMismatch):
        backend.put("badhash", verifying(data, claimed=b"other"), len(data))
    assert everything(swift, backend) == []
    assert put_statuses(swift_server, f"/{backend.container}/badhash", 1) == ["499"]


def test_streamed_put_of_short_body_is_never_committed(
    make_backend, swift, swift_server
):
    backend = make_backend()
    data = os.urandom(2 * MIB)
    with pytest.raises(SizeMismatch):
        backend.put("short", verifying(data, size=3 * MIB), 3 * MIB)
    assert everything(swift, backend) == []
    assert put_statuses(swift_server, f"/{backend.container}/short", 1) == ["499"]


def test_small_put_with_wrong_hash_sends_nothing(make_backend, swift, swift_server):
    backend = make_backend()
    data = os.urandom(BUFFER)
    with pytest.raises(HashMismatch):
        backend.put("small", verifying(data, claimed=b"other"), len(data))
    proxy_logged_everything_before(swift_server, swift)
    assert swift_server.access_log(f"/{backend.container}/small") == []
    assert everything(swift, backend) == []


# -- reads -----------------------------------------------------------------------


def test_seek_and_read_fetch_only_small_windows(make_backend, swift_server):
    backend = make_backend()
    size = 8 * MIB
    backend.put("lazy", DataSource(size, 5), size)
    expected = DataSource(size, 5).readall()
    f, got = backend.open("lazy")
    with f:
        assert got == size  # from the first window's Content-Range
        f.seek(6 * MIB + 3)
        assert f.read(10) == expected[6 * MIB + 3 : 6 * MIB + 13]
        assert f.requests == 2  # the first window, then one at 6 MiB
    # The proxy sent two small ranges, not the object.
    needle = f" GET /v1/{swift_server.account}/{backend.container}/lazy "
    gets = swift_server.wait_for_access_log(needle, 2)
    assert len(gets) == 2
    for line in gets:
        fields = line.split()
        status = fields[fields.index("GET") + 3]
        sent = fields[fields.index("GET") + 8]
        # 499: the reader closed a window with bytes unread, as it should.
        assert status in ("206", "499")
        assert int(sent) <= 64 * KIB


def test_small_object_is_read_with_one_request(make_backend, swift_server):
    backend = make_backend()
    backend.put("tiny", io.BytesIO(b"tiny blob"), 9)
    backend.put("empty", io.BytesIO(b""), 0)
    for name, data in (("tiny", b"tiny blob"), ("empty", b"")):
        f, size = backend.open(name)
        with f:
            assert size == len(data)
            assert f.read() == data
            assert f.requests == 1


def test_sequential_read_grows_its_window(make_backend):
    backend = make_backend()
    size = 8 * MIB
    backend.put("seq", DataSource(size, 1), size)
    f, _ = backend.open("seq")
    with f:
        reader = VerifyingReader(f, size)
        reader.drain()
        # The first 64 KiB window, then the rest of the first 1 MiB read,
        # then windows twice as big each time: 1.9, 3.75 MiB, the rest.
        assert f.requests == 5
    assert reader.hash == DataSource.digest(size, 1)


def test_read_ahead_bounds_the_window(make_backend):
    backend = make_backend(read_ahead=MIB)
    size = 4 * MIB
    backend.put("bounded", DataSource(size, 1), size)
    f, _ = backend.open("bounded")
    with f:
        assert len(f.read()) == size
        # The first 64 KiB window, then four of at most 1 MiB.
        assert f.requests == 5


def test_object_removed_while_read_is_not_found(make_backend):
    backend = make_backend()
    size = 3 * MIB
    backend.put("vanishing", DataSource(size, 2), size)
    f, _ = backend.open("vanishing")
    with f:
        assert len(f.read(MIB)) == MIB  # ends exactly where a window ends
        backend.remove("vanishing")
        with pytest.raises(BlobNotFound):
            f.read(MIB)


# -- tokens ------------------------------------------------------------------------


def test_invalidated_token_is_renewed_transparently(make_backend, swift_server):
    backend = make_backend()
    backend.put("before", io.BytesIO(b"data"), 4)
    f, _ = backend.open("before")
    f.close()
    token = backend._pool.token
    assert token is not None

    swift_server.flush_tokens()
    assert read_all(backend, "before") == b"data"
    assert backend._pool.token != token

    # Every kind of call renews it: small put, streamed put, SLO put, list,
    # remove, check.
    steps = [
        lambda: backend.put("small", io.BytesIO(b"abc"), 3),
        lambda: backend.put("streamed", DataSource(2 * MIB), 2 * MIB),
        lambda: backend.put("unsized", DataSource(2 * MIB), None),
        lambda: list(backend.list()),
        lambda: backend.remove("before"),
        backend.check,
    ]
    for step in steps:
        swift_server.flush_tokens()
        step()
    assert names(backend) == {"small", "streamed", "unsized"}


def test_concurrent_calls_share_one_renewed_token(make_backend, swift_server):
    backend = make_backend()
    for i in range(4):
        backend.put(f"o{i}", io.BytesIO(b"x" * i), i)
    swift_server.flush_tokens()
    errors = []

    def read(i):
        try:
            assert read_all(backend, f"o{i}") == b"x" * i
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_a_renewed_token_is_shared_by_the_pool(make_backend, swift_server, swift):
    # One connection re-authenticates; the others get its token when they
    # are next handed out, instead of each meeting a 401 and logging in.
    backend = make_backend()
    pool = backend._pool
    a, handed_a = pool.acquire()
    b, handed_b = pool.acquire()
    assert a is not b and a.token == b.token == pool.token
    swift_server.flush_tokens()
    a.head_container(backend.container)  # 401, log in, retry
    pool.release(a, handed_a, healthy=True)
    pool.release(b, handed_b, healthy=True)  # stale token: not published
    proxy_logged_everything_before(swift_server, swift)
    logins = len(swift_server.access_log(" GET /auth/v1.0 "))
    conns = [pool.acquire(), pool.acquire()]
    assert {conn.token for conn, _ in conns} == {a.token} != {handed_a}
    for conn, handed in conns:
        conn.head_container(backend.container)
        pool.release(conn, handed, healthy=True)
    proxy_logged_everything_before(swift_server, swift)
    assert len(swift_server.access_log(" GET /auth/v1.0 ")) == logins


# -- outages ----------------------------------------------------------------------


def test_outage_is_unavailable_naming_the_object(make_backend, outage, swift):
    backend = make_backend()
    backend.put("there", io.BytesIO(b"here"), 4)
    with outage.proxy_stopped():
        with pytest.raises(Unavailable, match=f"{backend.container}/new"):
            backend.put("new", io.BytesIO(b"x"), 1)
        with pytest.raises(Unavailable, match=f"{backend.container}/big"):
            backend.put("big", DataSource(2 * MIB), 2 * MIB)
        with pytest.raises(Unavailable, match=f"{backend.container}/there"):
            backend.open("there")
        with pytest.raises(Unavailable, match=f"{backend.container}/there"):
            backend.remove("there")
        with pytest.raises(Unavailable, match=backend.container):
            list(backend.list())
        with pytest.raises(Unavailable, match="unreachable"):
            backend.check()
    backend.check()
    assert everything(swift, backend) == ["there"]
    assert read_all(backend, "there") == b"here"


def test_outage_through_the_store_records_nothing(make_backend, outage, tmp_path):
    backend = make_backend()
    store = Store(SQLiteCatalog(tmp_path / "catalog.db"), backend)
    data = os.urandom(2 * MIB)
    with outage.proxy_stopped(), pytest.raises(Unavailable, match="Swift"):
        store.put(io.BytesIO(data), hash_of(data), len(data))
    assert store.catalog.get_blob(hash_of(data)) is None
    assert names(backend) == set()
    # Swift is back: the same put works.
    result = store.put(io.BytesIO(data), hash_of(data), len(data))
    assert result.created
    with store.open(result.hash) as f:
        assert f.read() == data
    store.close()


def test_swift_crash_mid_put(make_backend, outage, swift):
    # The proxy dies while a streamed put is sending: the put fails as
    # Unavailable (not as an error of the stream), nothing is committed.
    backend = make_backend()
    crash_at = 2 * MIB

    class CrashingSource(DataSource):
        def readinto(self, buffer):
            if self._pos >= crash_at and outage.proxy_running():
                outage.stop_proxy(kill=True)
            return super().readinto(buffer)

    with pytest.raises(Unavailable, match=f"{backend.container}/crash"):
        backend.put("crash", CrashingSource(4 * MIB), 4 * MIB)
    outage.start_proxy()
    assert everything(swift, backend) == []


def test_swift_crash_mid_slo_put_leaves_an_orphan_the_sweep_can_remove(
    make_backend, outage, swift
):
    backend = make_backend(segment_size=SEGMENT)
    crash_at = 2 * SEGMENT + 1000

    class CrashingSource(DataSource):
        def readinto(self, buffer):
            if self._pos >= crash_at and outage.proxy_running():
                outage.stop_proxy(kill=True)
            return super().readinto(buffer)

    with pytest.raises(Unavailable):
        backend.put("torn", CrashingSource(4 * SEGMENT), 4 * SEGMENT)
    outage.start_proxy()
    # The cleanup could not reach Swift; the committed segments show up as
    # an orphan under the blob's name, and remove() reclaims them.
    assert [(o.name, o.size) for o in backend.list()] == [("torn", 2 * SEGMENT)]
    backend.remove("torn")
    assert everything(swift, backend) == []


def test_backend_starts_while_swift_is_down(make_backend, outage, swift):
    container = new_container()
    with outage.proxy_stopped():
        backend = make_backend(container)
        with pytest.raises(Unavailable):
            backend.check()
    # Containers are created on first use once Swift is back.
    backend.put("late", io.BytesIO(b"late"), 4)
    assert stored(swift, container) == ["late"]


# -- the s3api peer -----------------------------------------------------------------


def test_s3api_answers_signed_requests(swift_server):
    # The proxy also speaks S3 (for benchmarks against Swift's own S3).
    date = formatdate(usegmt=True)
    string_to_sign = f"GET\n\n\n{date}\n/"
    signature = base64.b64encode(
        hmac.digest(
            swift_server.s3_secret_key.encode(), string_to_sign.encode(), "sha1"
        )
    ).decode()
    request = urllib.request.Request(
        swift_server.s3_endpoint + "/",
        headers={
            "Date": date,
            "Authorization": f"AWS {swift_server.s3_access_key}:{signature}",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        body = resp.read()
    assert resp.status == 200
    assert b"ListAllMyBucketsResult" in body
