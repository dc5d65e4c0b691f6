"""S3 requests are counted in the service's metrics, by S3 operation."""

from __future__ import annotations

import falcon.testing

from blobstore_api.metrics import Metrics
from tests.s3.signing import Api


def test_s3_requests_are_counted_by_operation(tmp_path):
    from blobstore_api.s3 import create_s3_app

    with Api.create(tmp_path) as api:
        metrics = Metrics(api.store)
        app = create_s3_app(
            api.store,
            {"credentials": [{"access_key": "AKIDEXAMPLE", "secret_key": "x"}]},
            metrics=metrics,
        )
        api.client = falcon.testing.TestClient(app)
        assert api.request("PUT", "/bkt", sign=False).status_code == 403
        text = metrics.exposition().decode()
    assert (
        'blobstore_http_requests_total{method="PUT",route="s3",status="403"} 1.0'
        in text
    )


def test_signed_s3_requests_name_their_operation(api):
    from blobstore_api.s3 import create_s3_app
    from tests.s3.signing import ACCESS_KEY
    from tests.s3.signing import SECRET_KEY

    metrics = Metrics(api.store)
    app = create_s3_app(
        api.store,
        {"credentials": [{"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}]},
        metrics=metrics,
    )
    api.client = falcon.testing.TestClient(app)
    assert api.request("PUT", "/bkt").status_code == 200
    assert api.request("PUT", "/bkt/key", body=b"data").status_code == 200
    text = metrics.exposition().decode()
    assert 'route="s3:buckets.create_bucket"' in text
    assert 'route="s3:objects.put_object"' in text
