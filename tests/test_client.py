"""blobstore.client: the contract suite over a Store and over a Client of a
real ``blobstore serve``; then what only the client does (parallel resumable
uploads, retries, errors of the wire, the CLI)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from blobstore import Store
from blobstore.backends.local import LocalBackend
from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore.client import Client
from blobstore.client import Retry
from blobstore.errors import AccessDenied
from blobstore.errors import BadParams
from blobstore.errors import HashMismatch
from blobstore.errors import NotFound
from blobstore.errors import Unavailable
from tests.client_contract import BlobsContract
from tests.client_contract import sha384
from tests.client_contract import unique
from tests.e2e.server import ServerProcess

MiB = 1024 * 1024
BLOBSTORE = Path(sys.executable).parent / "blobstore"
#: Small parts, so multipart uploads of a few MiB have several.
CONFIG = "[limits]\nmin_part_size = 1024\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("client"), config=CONFIG, threads=8)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with Client(server.url, retry=Retry(total=5, attempts=3)) as c:
        yield c


class TestStore(BlobsContract):
    @pytest.fixture
    def blobs(self, tmp_path):
        store = Store(SQLiteCatalog(tmp_path / "c.db"), LocalBackend(tmp_path / "b"))
        yield store
        store.close()


class TestClient(BlobsContract):
    @pytest.fixture
    def blobs(self, client):
        return client


# -- puts of what only a client is given ----------------------------------------


def test_put_takes_bytes_and_iterables(client):
    data = unique(2 * MiB + 3)
    assert client.put(data).hash == sha384(data)
    chunks = [data[i : i + MiB] for i in range(0, len(data), MiB)]
    again = client.put(iter(chunks))
    assert (again.hash, again.created) == (sha384(data), False)
    other = unique(5000)
    sized = client.put(iter([other[:2000], other[2000:]]), size=5000)
    assert sized.hash == sha384(other)


def test_get_file_writes_verified_bytes(client, tmp_path):
    data = unique(3 * MiB)
    digest = client.put(data).hash
    target = tmp_path / "out.bin"
    assert client.get_file(digest, target) == len(data)
    assert target.read_bytes() == data
    assert not (tmp_path / "out.bin.partial").exists()


# -- multipart ------------------------------------------------------------------


def write_file(path: Path, size: int) -> bytes:
    data = unique(size)
    path.write_bytes(data)
    return data


@pytest.mark.parametrize(
    ("size", "part_size"),
    [(0, 1 * MiB), (1, 1 * MiB), (5 * MiB, 1 * MiB), (5 * MiB + 17, 1 * MiB)],
)
def test_upload_file_in_parallel_parts(client, tmp_path, size, part_size):
    data = write_file(tmp_path / "f", size)
    seen = []
    digest = client.upload_file(
        tmp_path / "f",
        part_size=part_size,
        concurrency=3,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert digest == sha384(data)
    with client.open(digest) as reader:
        assert reader.read() == data
    if size:
        assert seen[-1] == (size, size) or max(d for d, _ in seen) == size
        assert all(total == size for _, total in seen)


def test_upload_file_resumes_and_sends_only_what_is_missing(client, server, tmp_path):
    data = write_file(tmp_path / "f", 6 * MiB)
    ids = []
    # Interrupted: a progress callback that raises stands in for a crash
    # once two parts are sent.

    def crash_after_two(done, total):
        if done >= 2 * MiB + 1:
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        client.upload_file(
            tmp_path / "f",
            part_size=MiB,
            concurrency=1,
            progress=crash_after_two,
            on_upload=ids.append,
        )
    upload = requests.get(f"{server.url}/v1/uploads/{ids[0]}", timeout=30).json()
    held = [p for p in upload["parts"] if p and p["complete"]]
    assert 1 <= len(held) < 6
    before = requests.get(f"{server.url}/metrics", timeout=30).text

    def parts_received(text):
        for line in text.splitlines():
            if (
                line.startswith("blobstore_http_received_bytes_total")
                and "parts" in line
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    digest = client.upload_file(
        tmp_path / "f", part_size=MiB, upload_id=ids[0], concurrency=2
    )
    assert digest == sha384(data)
    after = requests.get(f"{server.url}/metrics", timeout=30).text
    resent = parts_received(after) - parts_received(before)
    assert resent <= (6 - len(held)) * MiB  # the held parts were not sent again


def test_resuming_with_another_file_is_refused(client, tmp_path):
    write_file(tmp_path / "f", 3 * MiB)
    ids = []
    client.upload_file(tmp_path / "f", part_size=MiB, on_upload=ids.append)
    write_file(tmp_path / "g", 3 * MiB)
    with pytest.raises(BadParams, match="a different file or part size"):
        client.upload_file(tmp_path / "g", part_size=MiB, upload_id=ids[0])


# -- the wire ---------------------------------------------------------------------


def test_errors_of_the_wire_are_library_errors(server):
    nowhere = Client(server.url + "/nowhere", retry=Retry(total=1, attempts=1))
    with nowhere, pytest.raises(NotFound):
        nowhere.stats()
    down = Client("http://127.0.0.1:9", retry=Retry(total=1, attempts=2, first=0.01))
    with down, pytest.raises(Unavailable, match="cannot reach"):
        down.exists(sha384(b"x"))


def test_a_token_the_service_refuses_is_access_denied(tmp_path):
    token = "client-test-token-0123456789"
    config = f'[auth]\ntokens = [{{token = "{token}", access = "read"}}]\n'
    with ServerProcess(tmp_path / "auth", config=config) as srv:
        with Client(srv.url) as anonymous, pytest.raises(AccessDenied):
            anonymous.exists(sha384(b"x"))
        with Client(srv.url, token=token) as reader:
            assert reader.exists(sha384(b"x")) is False
            with pytest.raises(AccessDenied):
                reader.put(b"read-only token")


def test_safe_requests_are_retried_until_the_service_is_back(tmp_path):
    srv = ServerProcess(tmp_path / "flaky")
    srv.start()
    data = unique(1000)
    with Client(srv.url, retry=Retry(total=60, attempts=50, first=0.2, longest=1)) as c:
        digest = c.put(data).hash
        srv.stop()
        restarted = threading.Timer(1.5, srv.start)
        restarted.start()
        try:
            started = time.monotonic()
            assert c.stat(digest).size == 1000  # retried while it was down
            assert time.monotonic() - started >= 1
        finally:
            restarted.join()
            srv.stop()


# -- the CLI ----------------------------------------------------------------------


def cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BLOBSTORE), *args],
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        **kwargs,
    )


def test_cli_put_get_and_refs(server, tmp_path):
    env = {"BLOBSTORE_URL": server.url}
    small = write_file(tmp_path / "small", 1000)
    put = cli("put", str(tmp_path / "small"), "--ref", "cli/small", env=env)
    assert put.returncode == 0, put.stderr
    digest = put.stdout.decode().strip()
    assert digest == sha384(small)
    got = cli("get", digest, env=env)
    assert got.stdout == small
    assert cli("refs", "get", "cli/small", env=env).stdout.decode().strip() == digest
    listed = cli("refs", "list", "--prefix", "cli/", "--json", env=env)
    assert json.loads(listed.stdout.splitlines()[0])["name"] == "cli/small"
    big = write_file(tmp_path / "big", 3 * MiB + 1)
    multipart = cli(
        "put", str(tmp_path / "big"), "--part-size", "1MiB", "--json", env=env
    )
    assert multipart.returncode == 0, multipart.stderr
    assert json.loads(multipart.stdout)["hash"] == sha384(big)
    assert b"resume with --resume" in multipart.stderr
    out = tmp_path / "copy"
    assert cli("get", sha384(big), "-o", str(out), env=env).returncode == 0
    assert out.read_bytes() == big
    assert cli("refs", "delete", "cli/small", env=env).returncode == 0
    gone = cli("refs", "get", "cli/small", env=env)
    assert gone.returncode == 1
    assert b"not found" in gone.stderr
    bad = cli("get", "nothex", env=env)
    assert bad.returncode == 2
    assert bad.stderr.decode().count("\n") == 1


def test_a_gib_put_killed_halfway_resumes_with_the_right_hash(server, tmp_path):
    # kill -9 of the CLI in the middle of a 1 GiB multipart put; then
    # `put --resume ID` sends the rest and the hash is the file's.
    path = tmp_path / "gib"
    digest = hashlib.sha384()
    with open(path, "wb") as out:
        block = os.urandom(MiB)
        for i in range(1024):
            chunk = block[:-8] + i.to_bytes(8, "big")
            digest.update(chunk)
            out.write(chunk)
    env = {"BLOBSTORE_URL": server.url}
    process = subprocess.Popen(
        [
            str(BLOBSTORE),
            "put",
            str(path),
            "--part-size",
            "32MiB",
            "--concurrency",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )
    line = process.stderr.readline().decode()
    assert "resume with --resume" in line, line
    upload_id = line.rsplit("--resume ", 1)[1].strip(" )\n")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        upload = requests.get(f"{server.url}/v1/uploads/{upload_id}", timeout=30).json()
        complete = sum(1 for p in upload["parts"] if p and p["complete"])
        if complete >= 8:  # a quarter or more is there
            break
        time.sleep(0.05)
    process.kill()
    process.communicate()  # reaps it and closes its pipes
    assert complete < 32, "the put finished before it could be killed"
    resumed = cli(
        "put",
        str(path),
        "--part-size",
        "32MiB",
        "--resume",
        upload_id,
        "--json",
        env=env,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["hash"] == digest.hexdigest()
    with Client(server.url) as c, c.open(digest.hexdigest()) as reader:
        assert reader.size == 1024 * MiB
        reader.seek(700 * MiB)
        assert reader.read(MiB)[-8:] == (700).to_bytes(8, "big")


@pytest.mark.parametrize(
    "name",
    [
        "put",
        "stat",
        "exists",
        "open",
        "stats",
        "put_ref",
        "get_ref",
        "delete_ref",
        "list_refs",
    ],
)
def test_client_methods_take_the_store_methods_arguments(name):
    # Positionally and by keyword: the Client's parameters are the first of
    # the Store's (the Store may take more, for in-process callers).
    import inspect

    store_params = list(inspect.signature(getattr(Store, name)).parameters)
    client_params = list(inspect.signature(getattr(Client, name)).parameters)
    assert store_params[: len(client_params)] == client_params


def test_bytes_io_of_a_put_is_read_once_when_not_seekable(client):
    data = unique(3000)
    stream = io.BufferedReader(io.BytesIO(data))
    assert client.put(stream).hash == sha384(data)


def test_a_hash_mismatch_from_the_service_is_hash_mismatch(client):
    with pytest.raises(HashMismatch):
        client.put(iter([b"abc"]), sha384(b"abd"))


# -- answers lost on the way back ---------------------------------------------------


class AnswerDropper:
    """A TCP proxy to a real server that, once armed with a request line
    prefix, passes the next such request on and closes the client's
    connection instead of relaying the answer: the request was carried out
    and the client never heard (a crash, or HTTP's keep-alive race)."""

    def __init__(self, upstream: str) -> None:
        import socket
        from urllib.parse import urlsplit

        parts = urlsplit(upstream)
        self._upstream = (parts.hostname, parts.port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.armed: bytes | None = None
        self.dropped = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            doomed = threading.Event()
            threading.Thread(
                target=self._requests, args=(client, upstream, doomed), daemon=True
            ).start()
            threading.Thread(
                target=self._answers, args=(upstream, client, doomed), daemon=True
            ).start()

    def _requests(self, client, upstream, doomed) -> None:
        try:
            while data := client.recv(65536):
                if self.armed and data.startswith(self.armed):
                    self.armed = None
                    doomed.set()
                upstream.sendall(data)
        except OSError:
            pass

    def _answers(self, upstream, client, doomed) -> None:
        import socket

        try:
            while data := upstream.recv(65536):
                if doomed.is_set():
                    self.dropped += 1
                    break  # carried out; the answer goes nowhere
                client.sendall(data)
        except OSError:
            pass
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def dropper(server):
    proxy = AnswerDropper(server.url)
    yield proxy
    proxy.close()


def test_a_ref_delete_whose_answer_was_lost_is_resent_and_done(dropper, client):
    digest = client.put(b"pinned then unpinned").hash
    client.put_ref("lost/answer", digest)
    with Client(dropper.url, retry=Retry(total=5, attempts=3, first=0.05)) as c:
        dropper.armed = b"DELETE /v1/refs/lost/answer"
        c.delete_ref("lost/answer")  # resent: the ref is gone, which is done
        assert dropper.dropped == 1
        with pytest.raises(NotFound):
            c.get_ref("lost/answer")
        with pytest.raises(NotFound):  # a first DELETE of nothing still says so
            c.delete_ref("lost/answer")


def test_an_upload_whose_creation_answer_was_lost_still_goes_through(dropper, tmp_path):
    data = write_file(tmp_path / "file", 5000)
    with Client(dropper.url, retry=Retry(total=5, attempts=3, first=0.05)) as c:
        dropper.armed = b"POST /v1/uploads"
        digest = c.upload_file(tmp_path / "file", part_size=1024)
        assert dropper.dropped == 1
        assert digest == sha384(data)
        assert c.open(digest).read() == data
