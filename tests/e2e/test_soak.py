"""The soak, short (issue 15): 64 concurrent clients over the native API and
S3 for 30 seconds against a real ``blobstore serve``; no errors at all.

``python -m bench.soak`` is the long version (10 minutes by default, not in
the default run); BLOBSTORE_SOAK_SECONDS lengthens this one. The figures
(p99, memory growth) are printed, not asserted: they depend on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.soak import MIX
from tests.e2e.server import ROOT

SECONDS = float(os.environ.get("BLOBSTORE_SOAK_SECONDS", "30"))


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 240)
def test_64_clients_for_30_seconds_see_no_error():
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.soak",
            "--seconds",
            str(SECONDS),
            "--clients",
            "64",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SECONDS + 200,
    )
    assert run.stdout, run.stderr
    report = json.loads(run.stdout.splitlines()[-1])
    print(json.dumps(report, indent=1))
    assert report["errors"] == 0, report["first_errors"]
    assert run.returncode == 0
    # Every kind of operation ran, and many of them: the load was real.
    assert set(report["by_operation"]) == set(MIX)
    assert report["operations"] >= 20 * SECONDS
    assert report["p99_ms"] is not None and report["rss_growth"] is not None
