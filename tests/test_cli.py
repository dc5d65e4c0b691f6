"""The ``blobstore`` command line: help, and configuration errors reported
in one line with exit status 2 before anything starts."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from blobstore_api.cli import main
from blobstore_api.server import MALLOC_TUNABLES
from blobstore_api.server import with_malloc_tunables


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("BLOBSTORE_CONFIG", "BLOBSTORE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: str, env: dict[str, str] | None = None):
        return CliRunner().invoke(main, list(args), env=env)

    return invoke


def test_help_lists_serve(run):
    result = run("--help")
    assert result.exit_code == 0
    assert "serve" in result.output
    serve = run("serve", "--help")
    assert "--bind" in serve.output and "--data-dir" in serve.output


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--bind", "nonsense"], None, "[server] bind (from command line) must be"),
        (["--config", "missing.toml"], None, "cannot read missing.toml"),
        ([], {"BLOBSTORE_SERVER_THREADS": "x"}, "(from BLOBSTORE_SERVER_THREADS)"),
        (["--bind", "0.0.0.0:8080"], None, "add tokens or bind to a loopback address"),
        (
            [],
            {"BLOBSTORE_BACKEND_PTH": "/x"},
            '[backend] pth is not a known key (type = "local")',
        ),
    ],
)
def test_config_errors_exit_2_with_one_line(run, args, env, message):
    result = run("serve", *args, env=env)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert result.output.startswith("blobstore: config error: ")
    assert message in result.output


def test_bad_option_values_are_usage_errors(run):
    assert run("serve", "--workers", "0").exit_code == 2


def test_malloc_tunables_keep_what_the_user_set():
    ours = ":".join(f"{k}={v}" for k, v in MALLOC_TUNABLES.items())
    assert with_malloc_tunables(None) == ours
    assert with_malloc_tunables("glibc.malloc.arena_max=2") == (
        f"glibc.malloc.arena_max=2:{ours}"
    )
    mine = "glibc.malloc.mmap_threshold=1048576"
    assert with_malloc_tunables(mine).split(":") == [
        mine,
        f"glibc.malloc.trim_threshold={MALLOC_TUNABLES['glibc.malloc.trim_threshold']}",
    ]
    assert with_malloc_tunables(with_malloc_tunables(None)) == ours


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("ConfigError", 2),
        ("BadParams", 2),
        ("HashMismatch", 2),
        ("LeaseHeld", 75),
        ("Unavailable", 1),
        ("Corrupt", 1),
        ("BlobNotFound", 1),
    ],
)
def test_one_table_maps_domain_errors_to_exit_statuses(error, code):
    from blobstore import errors
    from blobstore_api.commands import exit_code

    assert exit_code(getattr(errors, error)("x")) == code


def test_a_lost_lease_is_a_failure_not_busy():
    from blobstore.lease import LeaseLost
    from blobstore_api.commands import exit_code

    assert exit_code(LeaseLost("x")) == 1
