"""One listener, two APIs: which requests go to the S3 façade."""

from __future__ import annotations

import falcon
import falcon.testing
import pytest

import blobstore_api.s3
from blobstore.config import Settings
from blobstore.errors import ConfigError
from blobstore_api.app import Dispatcher
from blobstore_api.app import create_app
from blobstore_api.app import create_native_app

SIGV4 = (
    "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=abc"
)


def stand_in_s3_app() -> falcon.App:
    """Answers every request with 299, so tests can tell who answered."""

    def sink(req: falcon.Request, resp: falcon.Response, **params) -> None:
        resp.status = 299
        resp.media = {"s3": req.path}

    app = falcon.App()
    app.add_sink(sink, prefix="/")
    return app


@pytest.fixture
def both(store, settings):
    return falcon.testing.TestClient(
        Dispatcher(create_native_app(store, settings), stand_in_s3_app())
    )


@pytest.mark.parametrize(
    ("path", "headers", "query", "to_s3"),
    [
        ("/v1/blobs", {}, None, False),
        ("/v1/stats", {}, None, False),
        ("/healthz", {}, None, False),
        ("/readyz", {}, None, False),
        ("/metrics", {}, None, False),
        ("/v1", {}, None, False),
        ("/", {}, None, True),  # ListBuckets, anonymous: S3 refuses it
        ("/bucket/key", {}, None, True),
        ("/v1x/key", {}, None, True),
        ("/healthz/more", {}, None, True),
        # Signed requests are S3's whatever the path (a bucket named "v1").
        ("/v1/blobs", {"Authorization": SIGV4}, None, True),
        ("/healthz", {}, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=x", True),
        ("/v1/key", {"Authorization": "AWS AKID:sig"}, None, True),  # SigV2
        ("/v1/blobs", {"Authorization": "Bearer sometoken-long-enough"}, None, False),
        ("/v1/blobs", {}, "not-X-Amz-Algorithm=1", False),
    ],
)
def test_dispatch(both, path, headers, query, to_s3):
    result = both.simulate_get(path, headers=headers, query_string=query)
    assert (result.status_code == 299) == to_s3, result.text


def test_create_app_mounts_s3_when_enabled(store, monkeypatch):
    calls = []

    def factory(store_arg, config, **kwargs):
        calls.append((store_arg, dict(config)))
        return stand_in_s3_app()

    monkeypatch.setattr(blobstore_api.s3, "create_s3_app", factory, raising=False)
    config = {"enabled": True, "region": "eu-west-1"}
    app = create_app(store, Settings(s3=config))
    assert calls == [(store, config)]
    client = falcon.testing.TestClient(app)
    assert client.simulate_get("/bucket/key").status_code == 299
    assert client.simulate_get("/healthz").status_code == 200


def test_create_app_without_s3_serves_native_404(store):
    client = falcon.testing.TestClient(
        create_app(store, Settings(s3={"enabled": False}))
    )
    assert client.simulate_get("/bucket/key").status_code == 404


def test_s3_enabled_without_the_facade_is_a_config_error(store, monkeypatch):
    monkeypatch.delattr(blobstore_api.s3, "create_s3_app", raising=False)
    with pytest.raises(ConfigError, match=r"\[s3\] enabled"):
        create_app(store, Settings(s3={"enabled": True}))
