"""End-to-end fixtures: a real ``blobstore serve`` per test (see server.py)."""

from __future__ import annotations

import pytest

from tests.e2e.server import ServerProcess


@pytest.fixture
def server_factory(tmp_path):
    """Make ServerProcess objects under tmp_path; all are stopped at the end."""
    servers: list[ServerProcess] = []

    def make(name: str = "srv", **kwargs) -> ServerProcess:
        server = ServerProcess(tmp_path / name, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(server_factory) -> ServerProcess:
    """A started service with the embedded default configuration."""
    srv = server_factory()
    srv.start()
    return srv
