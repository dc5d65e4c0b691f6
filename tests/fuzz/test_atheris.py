"""Each atheris target (atheris_targets.py) runs clean for a bounded, seeded
session under libFuzzer, starting from the inputs that once broke it
(atheris_corpus/TARGET/).

Each target runs in a subprocess of its own (``python -m
tests.fuzz.atheris_run TARGET -runs=N -seed=1``): libFuzzer owns the process
it runs in and ends it. BLOBSTORE_ATHERIS_RUNS sets N (default 2000: every
target together in about half a minute). Skipped where atheris is not
installed (it has wheels for CPython on x86_64 Linux only).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

from tests.fuzz.atheris_targets import TARGETS  # after the skip: it imports atheris

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "atheris_corpus"
RUNS = int(os.environ.get("BLOBSTORE_ATHERIS_RUNS", "2000"))
FUZZED = sorted(name for name in TARGETS if name != "canary")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tests.fuzz.atheris_run", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=280,  # under pytest's 300 s, so a hang reports its output
    )


def output(result: subprocess.CompletedProcess) -> str:
    """What the run printed (atheris prints a traceback to stdout, libFuzzer
    to stderr), less the list of modules instrumented."""
    text = result.stdout + result.stderr
    return "\n".join(
        line for line in text.splitlines() if "INFO: Instrumenting" not in line
    )


def tail(result: subprocess.CompletedProcess) -> str:
    return "\n".join(output(result).splitlines()[-60:])


@pytest.mark.parametrize("name", FUZZED)
def test_a_bounded_session_finds_nothing(tmp_path, name):
    corpus = tmp_path / "corpus"  # libFuzzer adds what it finds: a copy
    if (CORPUS / name).is_dir():
        shutil.copytree(CORPUS / name, corpus)
    else:
        corpus.mkdir()
    result = run(
        name, f"-runs={RUNS}", "-seed=1", f"-artifact_prefix={tmp_path}/", str(corpus)
    )
    assert result.returncode == 0, tail(result)
    assert "Done" in result.stderr, tail(result)


def test_a_failing_target_fails_the_run(tmp_path):
    crash = tmp_path / "input"
    crash.write_bytes(b"FUZZ")
    result = run("canary", f"-artifact_prefix={tmp_path}/", str(crash))
    assert result.returncode != 0, tail(result)
    assert "Uncaught Python exception" in output(result), tail(result)
    assert "AssertionError: the canary input" in output(result), tail(result)


def test_the_runner_lists_every_target():
    result = run()
    assert result.returncode == 0, tail(result)
    listed = [
        line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")
    ]
    assert listed == list(TARGETS)
