"""The benchmark's smoke run: ``python -m bench --quick`` must keep working.

It starts the real services (blobstore, a real Swift) and runs every
scenario at small sizes for a fraction of a second each; the figures are not
checked (this machine is shared and noisy), only that every scenario ran,
produced its rows, and left no service running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # exited while scanning
        if text in args:
            found.append(args)
    return found


@pytest.mark.slow
def test_quick_run_produces_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--json",
            str(out),
            "--dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={k: v for k, v in os.environ.items() if not k.startswith("BLOBSTORE_")},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    doc = json.loads(out.read_text())
    sections = {row["section"] for row in doc["rows"]}
    assert {
        "limits",
        "native API, local",
        "native API, erasure-posix 4+2",
        "memory",
        "S3 (boto3)",
        "small blobs, native API",
        "small blobs, S3",
        "Swift native API (peer)",
        "Swift s3api (peer, boto3)",
        "Swift backend, repeated GET",
        "scale (SQLite catalog)",
    } <= sections
    for row in doc["rows"]:
        assert row["value"] >= 0, row
        if row["unit"] in ("MB/s", "ops/s"):
            assert row["value"] > 0, row
    # Every service was stopped and the temporary directory removed.
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    assert not _processes_mentioning(str(tmp_path))
    assert doc["machine"]["cores"] == os.cpu_count()
