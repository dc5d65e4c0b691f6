"""Shared pytest fixtures. Each block below belongs to one area; keep them
separate so they stay easy to find and to merge."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

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
