"""Shared pytest fixtures. Each block below belongs to one area; keep them
separate so they stay easy to find and to merge."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import mongomock_client

# -- MongoDB ------------------------------------------------------------------
#
# By default the MongoDB tests run on mongomock (in-process, no server). With
# BLOBSTORE_TEST_MONGODB_URI=mongodb://host:port set, they run on that server
# instead, each test in a database of its own that is dropped afterwards.
# Tests of behaviour only a real server has ask for `real_mongo_client` (and
# carry the `mongodb` marker); without the variable they are skipped.

MONGODB_URI_ENV = "BLOBSTORE_TEST_MONGODB_URI"


@pytest.fixture
def mongo_database() -> str:
    """A database name no other test uses."""
    return f"blobstore_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def mongo_client(mongo_database: str) -> Iterator[Any]:
    """A MongoDB client: mongomock, or the real server named by
    BLOBSTORE_TEST_MONGODB_URI (``mongo_database`` is dropped afterwards)."""
    uri = os.environ.get(MONGODB_URI_ENV)
    if not uri:
        yield mongomock_client()
        return
    import pymongo

    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=10_000)
    try:
        yield client
    finally:
        client.drop_database(mongo_database)
        client.close()


@pytest.fixture
def real_mongo_client(mongo_client: Any) -> Any:
    """``mongo_client``, but only if it is a real server; skips otherwise."""
    if not os.environ.get(MONGODB_URI_ENV):
        pytest.skip(f"needs a real MongoDB: set {MONGODB_URI_ENV}=mongodb://...")
    return mongo_client


# -- end MongoDB ----------------------------------------------------------------


# -- OpenStack Swift ----------------------------------------------------------
#
# `swift_server` is one real single-node Swift (tests/swift_server.py) for the
# whole session, started on first use (~4 s) and stopped by PID at the end.
# If it cannot start, every test that uses it FAILS with the reason: CI must
# not pass without having run them. Developers without Swift can opt out with
# BLOBSTORE_TEST_SKIP_SWIFT=1, which skips those tests instead.

SKIP_SWIFT_ENV = "BLOBSTORE_TEST_SKIP_SWIFT"


@pytest.fixture(scope="session")
def swift_server() -> Iterator[object]:
    """A running :class:`tests.swift_server.SwiftServer`."""
    if os.environ.get(SKIP_SWIFT_ENV) == "1":
        pytest.skip(f"Swift tests skipped ({SKIP_SWIFT_ENV}=1)")
    from tests.swift_server import SwiftServer
    from tests.swift_server import SwiftStartError

    server = SwiftServer()
    try:
        server.start()
    except SwiftStartError as exc:
        pytest.fail(
            f"cannot start the test Swift server ({SKIP_SWIFT_ENV}=1 skips the "
            f"Swift tests):\n{exc}",
            pytrace=False,
        )
    try:
        yield server
    finally:
        server.stop()


# -- end of OpenStack Swift -----------------------------------------------------
