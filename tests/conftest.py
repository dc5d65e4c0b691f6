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
