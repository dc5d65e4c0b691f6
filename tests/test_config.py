"""blobstore.config: TOML + BLOBSTORE_* environment + overrides, validated key
by key with one-line errors, and the Store it builds."""

from __future__ import annotations

import io
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from blobstore.backends.local import LocalBackend
from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore.config import Token
from blobstore.config import build_store
from blobstore.config import is_loopback
from blobstore.config import load_settings
from blobstore.config import require_safe_bind
from blobstore.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "s3cr3t-token-0123456789"


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "blobstore.toml"
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path, text: str = "", env=None, **kw):
    path = write(tmp_path, text) if text else None
    return load_settings(path, env=env or {}, **kw)


def config_error(tmp_path, text: str = "", env=None, **kw) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, env, **kw)
    message = str(info.value)
    assert message.startswith("config error: ")
    assert "\n" not in message
    return message


# -- defaults, file, environment, overrides --------------------------------------


def test_embedded_default(tmp_path):
    s = load(tmp_path, data_dir=tmp_path / "d")
    assert s.server.bind == "127.0.0.1:8080"
    assert s.catalog == {"type": "sqlite", "path": str(tmp_path / "d" / "catalog.db")}
    assert s.backend == {"type": "local", "path": str(tmp_path / "d" / "blobs")}
    assert s.auth.open
    assert s.limits.min_part_size == 5 * 2**20
    assert s.limits.max_upload_expiry == timedelta(hours=24)
    assert s.gc.grace == timedelta(minutes=30)
    assert not s.s3_enabled
    assert s.source == "built-in defaults"


def test_default_data_dir_is_relative(tmp_path):
    assert load(tmp_path).data_dir == Path("data")


def test_file_values(tmp_path):
    s = load(
        tmp_path,
        f"""
        data_dir = "{tmp_path}/store"

        [server]
        bind = "0.0.0.0:9000"
        workers = 4
        threads = 16
        max_body_size = "1GiB"

        [catalog]
        type = "sqlite"
        path = "{tmp_path}/meta.db"

        [backend]
        type = "local"
        fsync = false

        [auth]
        tokens = [
            {{token = "{TOKEN}", access = "admin"}},
            {{token = "{TOKEN}-read", access = "read"}},
        ]

        [limits]
        min_part_size = "1MiB"
        max_part_size = "64MiB"
        max_parts = 1000
        max_upload_expiry = "2h"

        [gc]
        grace = "1h"
        ref_sources = [{{type = "file", path = "/etc/blobstore/refs"}}]

        [s3]
        enabled = true
        region = "eu-west-1"

        [cache]
        path = "/var/cache/blobstore"
        """,
    )
    server = s.server
    assert (server.bind, server.workers, server.threads) == ("0.0.0.0:9000", 4, 16)
    assert s.server.max_body_size == 2**30
    assert s.catalog == {"type": "sqlite", "path": f"{tmp_path}/meta.db"}
    assert s.backend == {
        "type": "local",
        "fsync": False,
        "path": f"{tmp_path}/store/blobs",
    }
    assert s.auth.tokens == (Token(TOKEN, "admin"), Token(f"{TOKEN}-read", "read"))
    assert s.limits.min_part_size == 2**20
    assert s.limits.max_parts == 1000
    assert s.limits.max_upload_expiry == timedelta(hours=2)
    assert s.gc.grace == timedelta(hours=1)
    assert s.gc.ref_sources == ({"type": "file", "path": "/etc/blobstore/refs"},)
    assert s.s3 == {"enabled": True, "region": "eu-west-1"}
    assert s.s3_enabled
    assert s.cache == {"path": "/var/cache/blobstore"}


def test_environment_overlays_the_file(tmp_path):
    env = {
        "BLOBSTORE_SERVER_BIND": "127.0.0.1:9999",
        "BLOBSTORE_SERVER_WORKERS": "3",
        "BLOBSTORE_LIMITS_MIN_PART_SIZE": "8MiB",
        "BLOBSTORE_GC_GRACE": "45m",
        "BLOBSTORE_AUTH_TOKENS": f'[{{token = "{TOKEN}", access = "read-write"}}]',
        "BLOBSTORE_BACKEND_FSYNC": "false",  # TOML in pass-through tables
        "BLOBSTORE_BACKEND_DRIVES": '["/d1", "/d2"]',
        "BLOBSTORE_BACKEND_CONTAINER": "blobs",  # not TOML: a string
        "BLOBSTORE_S3_ENABLED": "true",
        "BLOBSTORE_CATALOG_DATABASE": "2024",  # a string key stays a string
        "BLOBSTORE_TEST_MONGODB_URI": "ignored",  # not a section
        "BLOBSTORE_CONFIG": "unused when a path is given",
        "OTHER": "ignored",
    }
    s = load(tmp_path, "[server]\nworkers = 8\n", env=env)
    assert s.server.bind == "127.0.0.1:9999"
    assert s.server.workers == 3
    assert s.limits.min_part_size == 8 * 2**20
    assert s.gc.grace == timedelta(minutes=45)
    assert s.auth.tokens == (Token(TOKEN, "read-write"),)
    assert s.backend["fsync"] is False
    assert s.backend["drives"] == ["/d1", "/d2"]
    assert s.backend["container"] == "blobs"
    assert s.s3_enabled
    assert s.catalog["database"] == "2024"


def test_config_and_data_dir_from_environment(tmp_path):
    path = write(tmp_path, "[server]\nthreads = 3\n")
    env = {"BLOBSTORE_CONFIG": str(path), "BLOBSTORE_DATA_DIR": str(tmp_path / "x")}
    s = load_settings(env=env)
    assert s.server.threads == 3
    assert s.data_dir == tmp_path / "x"
    assert s.source == str(path)


def test_overrides_win(tmp_path):
    s = load(
        tmp_path,
        "[server]\nbind = '127.0.0.1:1'\n",
        env={"BLOBSTORE_SERVER_BIND": "127.0.0.1:2"},
        overrides={"server": {"bind": "127.0.0.1:3", "workers": None}},
    )
    assert s.server.bind == "127.0.0.1:3"
    assert s.server.workers == 2  # None: not given on the command line


def test_data_dir_precedence(tmp_path):
    text = 'data_dir = "from-file"\n'
    assert load(tmp_path, text).data_dir == Path("from-file")
    env = {"BLOBSTORE_DATA_DIR": "from-env"}
    assert load(tmp_path, text, env=env).data_dir == Path("from-env")
    assert load(tmp_path, text, env=env, data_dir="arg").data_dir == Path("arg")


def test_shipped_embedded_config_is_the_default(tmp_path):
    shipped = load_settings(ROOT / "config" / "embedded.toml", env={}, data_dir="d")
    assert shipped.server == load(tmp_path, data_dir="d").server
    assert shipped.catalog == load(tmp_path, data_dir="d").catalog
    assert shipped.backend == load(tmp_path, data_dir="d").backend
    assert shipped.limits == load(tmp_path).limits
    assert shipped.gc == load(tmp_path).gc


def test_shipped_production_config_loads(tmp_path):
    # Point the TLS keys at files that exist here; every other key is
    # checked as shipped, the [backend] table by the Swift backend's own
    # validation (building it would connect to Keystone).
    from blobstore.backends.swift.config import SwiftConfig
    from blobstore.errors import BadParams

    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    env = {
        "BLOBSTORE_SERVER_CERTFILE": str(cert),
        "BLOBSTORE_SERVER_KEYFILE": str(cert),
    }
    s = load_settings(ROOT / "config" / "production.toml", env=env)
    assert s.catalog["type"] == "mongodb"
    assert s.server.tls
    assert not s.auth.open
    require_safe_bind(s)
    assert s.backend["type"] == "swift"
    try:
        SwiftConfig.from_mapping(s.backend)
    except BadParams as exc:  # only when the optional keystone extra is missing
        assert "python-keystoneclient" in str(exc)


# -- errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[limits]\nmin_part_size = [1]\n", "[limits] min_part_size must be a size"),
        ("[limits]\nmax_parts = 'many'\n", "[limits] max_parts must be an integer"),
        ("[limits]\nmax_parts = 0\n", "[limits] max_parts must be at least 1"),
        ("[limits]\nmax_upload_expiry = 0\n", "max_upload_expiry must be a positive"),
        (
            "[limits]\nmin_part_size = 10\nmax_part_size = 5\n",
            "min_part_size must not be larger than max_part_size",
        ),
        ("[server]\nworkers = true\n", "[server] workers must be an integer"),
        ("[server]\nbind = 8080\n", "[server] bind must be a string"),
        ("[server]\nbind = 'localhost'\n", '[server] bind must be "HOST:PORT"'),
        ("[server]\nbind = 'h:99999'\n", '[server] bind must be "HOST:PORT"'),
        ("[server]\nbindd = 'x'\n", "[server] bindd is not a known key"),
        (
            "[server]\ncertfile = '/nonexistent.pem'\nkeyfile = '/x'\n",
            "[server] certfile '/nonexistent.pem' is not a readable file",
        ),
        ("[gc]\ngrace = 'soon'\n", "[gc] grace must be a duration"),
        ("[gc]\nlease_ttl = '500ms'\n", "[gc] lease_ttl must be at least 1s"),
        ("[gc]\nref_sources = 'x'\n", "[gc] ref_sources must be a list of tables"),
        ("[gc]\nref_sources = [{path = 'x'}]\n", "[gc] ref_sources[0].type must be"),
        ("[catalog]\ntype = 'oracle'\n", "[catalog] type 'oracle' is not installed"),
        ("[catalog]\nhost = 'x'\n", "[catalog] host is not a known key"),
        ("[backend]\ntype = 'tape'\n", "[backend] type 'tape' is not installed"),
        ("[backend]\ntype = 3\n", "[backend] type must be a string"),
        ("[s3]\nenabled = 'yes'\n", "[s3] enabled must be true or false"),
        ("[auth]\ntokens = [{token = 'short', access = 'read'}]\n", "at least 16"),
        (
            f"[auth]\ntokens = [{{token = '{TOKEN}', access = 'root'}}]\n",
            "[auth] tokens[0].access must be one of read, read-write, admin",
        ),
        (
            f"[auth]\ntokens = [{{token = '{TOKEN}', acess = 'read'}}]\n",
            "[auth] tokens[0] has unknown key 'acess'",
        ),
        (
            f"[auth]\ntokens = [{{token = '{TOKEN}', access = 'read'}},"
            f" {{token = '{TOKEN}', access = 'admin'}}]\n",
            "tokens[1].token is listed twice",
        ),
        ("[nonsense]\nx = 1\n", "unknown section or key 'nonsense'"),
        ("server = 5\n", "[server] must be a table"),
        ("[server\n", "is not valid TOML"),
    ],
)
def test_bad_file_values_are_one_line_errors(tmp_path, text, expected):
    assert expected in config_error(tmp_path, text)


def test_errors_name_the_environment_variable(tmp_path):
    message = config_error(tmp_path, env={"BLOBSTORE_SERVER_THREADS": "lots"})
    assert message == (
        "config error: [server] threads (from BLOBSTORE_SERVER_THREADS) "
        "must be an integer"
    )
    message = config_error(tmp_path, env={"BLOBSTORE_AUTH_TOKENS": "not toml ["})
    assert "BLOBSTORE_AUTH_TOKENS" in message


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.toml", env={})


def test_tls_needs_both_files(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    message = config_error(tmp_path, f"[server]\ncertfile = '{cert}'\n")
    assert "[server] keyfile is required for TLS" in message


def test_tokens_are_not_printed(tmp_path):
    s = load(tmp_path, f"[auth]\ntokens = [{{token = '{TOKEN}', access = 'read'}}]\n")
    assert TOKEN not in repr(s)


# -- binds -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bind", "loopback"),
    [
        ("127.0.0.1:8080", True),
        ("127.1.2.3:80", True),
        ("localhost:8080", True),
        ("[::1]:8080", True),
        ("unix:/run/blobstore.sock", True),
        ("0.0.0.0:8080", False),
        ("[::]:8080", False),
        ("10.1.2.3:8080", False),
        ("blobs.example.com:443", False),
        (":8080", False),
    ],
)
def test_is_loopback(bind, loopback):
    assert is_loopback(bind) == loopback


def test_open_access_only_on_loopback(tmp_path):
    require_safe_bind(load(tmp_path))
    wide = load(tmp_path, "[server]\nbind = '0.0.0.0:8080'\n")
    with pytest.raises(ConfigError, match="add tokens or bind to a loopback"):
        require_safe_bind(wide)
    secured = load(
        tmp_path,
        f"[server]\nbind = '0.0.0.0:8080'\n"
        f"[auth]\ntokens = [{{token = '{TOKEN}', access = 'read'}}]\n",
    )
    require_safe_bind(secured)


# -- building the store ------------------------------------------------------------


def test_build_store_default(tmp_path):
    with build_store(load(tmp_path, data_dir=tmp_path / "d")) as store:
        assert isinstance(store.catalog, SQLiteCatalog)
        assert isinstance(store.backend, LocalBackend)
        assert (tmp_path / "d" / "catalog.db").exists()
        assert (tmp_path / "d" / "blobs" / "objects").is_dir()
        assert store.limits.min_part_size == 5 * 2**20
        store.check()


def test_build_store_applies_limits_and_ref_sources(tmp_path):
    settings = load(
        tmp_path,
        f"""
        [limits]
        min_part_size = 100
        max_part_size = 1000
        max_parts = 3
        max_upload_expiry = "1h"
        [gc]
        ref_sources = [{{type = "file", path = "{tmp_path}/refs"}}]
        """,
        data_dir=tmp_path,
    )
    with build_store(settings) as store:
        assert (store.limits.min_part_size, store.limits.max_part_size) == (100, 1000)
        assert store.limits.max_parts == 3
        assert store.max_upload_expiry == timedelta(hours=1)
        assert [s.describe() for s in store.ref_sources] == [f"file {tmp_path}/refs"]


def test_build_store_puts_the_read_cache_in_front_of_the_backend(tmp_path):
    from blobstore.backends.cache import CacheBackend

    settings = load(
        tmp_path,
        f"""
        [cache]
        enabled = true
        path = "{tmp_path}/cache"
        max_size = "64MiB"
        """,
        data_dir=tmp_path / "d",
    )
    with build_store(settings) as store:
        assert isinstance(store.backend, CacheBackend)
        assert isinstance(store.backend.remote, LocalBackend)
        h = store.put(io.BytesIO(b"cached")).hash
        assert store.open(h).read() == b"cached"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[backend]\npth = '/x'\n", "[backend] "),
        ("[catalog]\nuri = 'mongodb://x'\n", "[catalog] "),
        ("[gc]\nref_sources = [{type = 'mongodb', uri = 'x'}]\n", "[gc] "),
        ("[gc]\nref_sources = [{type = 'ldap'}]\n", "unknown type 'ldap'"),
        ("[cache]\nenabled = true\nmax_size = 10\n", "[cache] path: required"),
        ("[cache]\nenabled = 'yes'\n", "[cache] enabled: expected true or false"),
        ("[cache]\nsize = 10\n", "[cache] size: unknown key"),
    ],
)
def test_build_store_reports_refused_tables_as_config_errors(tmp_path, text, expected):
    settings = load(tmp_path, text, data_dir=tmp_path)
    with pytest.raises(ConfigError) as info:
        build_store(settings)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)
