"""The OpenAPI document checked against the live service by schemathesis:
property-based requests to every operation of the document the service
serves (/v1/openapi.yaml), against a real ``blobstore serve`` with tokens.
Every answer must not be a 5xx, must have a documented status, content
type and headers, and must match its documented schema.

Bounded for the default run (``BLOBSTORE_SCHEMATHESIS_EXAMPLES``, 25 per
operation, with a fixed seed so a failure reproduces;
``BLOBSTORE_SCHEMATHESIS_SEED`` varies it). A longer search::

    BLOBSTORE_SCHEMATHESIS_EXAMPLES=1000 ./dev test tests/e2e/test_schemathesis.py

Not checked: schemathesis' opinions that a request its generator thinks
schema-valid must be accepted (a PUT whose body does not hash to the URL's
hash is schema-valid and rightly refused) or that a schema-violating one
must be refused (an empty POST body is the empty blob).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.server import ServerProcess

TOKEN = "schemathesis-admin-token-0123"
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = f'[auth]\ntokens = [{{token = "{TOKEN}", access = "admin"}}]\n'
    with ServerProcess(tmp_path_factory.mktemp("st"), config=config, threads=8) as srv:
        yield srv


@pytest.mark.parametrize("authorized", [True, False], ids=["token", "no-token"])
def test_every_operation_answers_as_documented(server, tmp_path, authorized):
    examples = os.environ.get("BLOBSTORE_SCHEMATHESIS_EXAMPLES", "25")
    seed = os.environ.get("BLOBSTORE_SCHEMATHESIS_SEED", "20261206")
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{server.url}/v1/openapi.yaml",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        examples,
        "--seed",
        seed,
        # One worker: with several, schemathesis' threads have hit a
        # CPython 3.11 "AST constructor recursion depth mismatch" SystemError.
        "--workers",
        "1",
        "--request-timeout",
        "30",
    ]
    if authorized:
        command += ["--header", f"Authorization: Bearer {TOKEN}"]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"},
    )
    report = result.stdout[-20000:] + result.stderr[-5000:]
    assert result.returncode == 0, report
    assert "passed" in result.stdout, report
    assert "Server error" not in result.stdout, report
