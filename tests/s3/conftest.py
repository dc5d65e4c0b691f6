"""Fixtures of the S3 façade tests.

* ``s3_server`` -- one real gunicorn serving the façade for the session;
  ``s3`` is a boto3 client for it with default settings; ``bucket`` a fresh
  bucket per test.
* ``api`` -- the façade in-process behind Falcon's TestClient, with a
  controllable clock and botocore-signed requests (see :mod:`.signing`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from tests.s3.realserver import S3Server
from tests.s3.signing import Api

_names = itertools.count()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server.start(tmp_path_factory.mktemp("s3server"))
    try:
        yield server
    finally:
        server.stop()


def boto3_client(
    server: S3Server,
    access_key: str | None = None,
    secret: str | None = None,
    config: Config | None = None,
):
    """A boto3 S3 client for *server*, with default settings unless *config*."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=access_key or server.access_key,
        aws_secret_access_key=secret or server.secret_key,
        config=config,
    )


@pytest.fixture(scope="session")
def s3(s3_server: S3Server):
    return boto3_client(s3_server)


@pytest.fixture
def bucket(s3) -> str:
    name = f"test-bucket-{next(_names)}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with Api.create(tmp_path) as api:
        yield api
