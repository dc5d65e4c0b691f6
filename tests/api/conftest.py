"""Fixtures for the HTTP API tests: a real Store (SQLite catalog in a temp
dir, memory or local backend) behind the real app, through Falcon's
TestClient."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import falcon.testing
import pytest

from blobstore import Store
from blobstore.backends.local import LocalBackend
from blobstore.backends.memory import MemoryBackend
from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore.config import AuthSettings
from blobstore.config import ServerSettings
from blobstore.config import Settings
from blobstore.config import Token
from blobstore_api.app import create_app

#: Small limits so multipart tests move kilobytes, not megabytes.
MIN_PART = 1024
MAX_PART = 4096
MAX_PARTS = 8
MAX_BODY = 64 * 1024

READ_TOKEN = "r" * 20
WRITE_TOKEN = "w" * 20
ADMIN_TOKEN = "a" * 20


def make_store(tmp_path, backend=None) -> Store:
    return Store(
        SQLiteCatalog(tmp_path / "catalog.db"),
        backend if backend is not None else MemoryBackend(),
        min_part_size=MIN_PART,
        max_part_size=MAX_PART,
        max_parts=MAX_PARTS,
    )


def make_settings(tokens: tuple[Token, ...] = ()) -> Settings:
    return Settings(
        server=ServerSettings(max_body_size=MAX_BODY), auth=AuthSettings(tokens)
    )


@pytest.fixture
def store(tmp_path):
    with make_store(tmp_path) as s:
        yield s


@pytest.fixture
def local_store(tmp_path):
    with make_store(tmp_path, LocalBackend(tmp_path / "blobs", fsync=False)) as s:
        yield s


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def client(store, settings) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(store, settings))


@pytest.fixture
def make_client(tmp_path) -> Callable[..., falcon.testing.TestClient]:
    """A client over *store* (default: memory backend) with *settings*."""
    stores = []

    def make(store=None, settings=None, **changes: Any):
        if store is None:
            store = make_store(
                tmp_path / f"s{len(stores)}", changes.pop("backend", None)
            )
            stores.append(store)
        settings = settings or make_settings()
        if changes:
            settings = replace(settings, **changes)
        return falcon.testing.TestClient(create_app(store, settings))

    yield make
    for s in stores:
        s.close()


class BrokenInput(io.RawIOBase):
    """A WSGI input that yields *data*, then raises *exc* instead of EOF (a
    client that went away mid-body)."""

    def __init__(self, data: bytes, exc: BaseException) -> None:
        super().__init__()
        self._data = io.BytesIO(data)
        self._exc = exc

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._data.readinto(buffer)
        if not n:
            raise self._exc
        return n


def streamed(client, method: str, path: str, stream, headers=None, **kw):
    """A request whose body is read from *stream* with no Content-Length, as a
    WSGI server delivers a chunked body (``wsgi.input_terminated``)."""
    headers = {"Transfer-Encoding": "chunked", **(headers or {})}
    extras = {"wsgi.input": stream, "wsgi.input_terminated": True}
    extras.update(kw.pop("extras", {}))
    return client.simulate_request(method, path, headers=headers, extras=extras, **kw)


def chunked(client, method: str, path: str, data: bytes, **kw):
    return streamed(client, method, path, io.BytesIO(data), **kw)


def error_code(result) -> str:
    body = result.json
    assert set(body) == {"code", "message"}, body
    assert body["message"]
    return body["code"]
