"""/v1/docs in a real browser: headless Chromium (Debian's ``chromium``)
loads the page from a real ``blobstore serve`` with the network to anywhere
else unused (the page is self-contained), renders it, and lists every
route of the document; and a screenshot of it is a real picture."""

from __future__ import annotations

import html
import shutil
import struct
import subprocess

import pytest

from blobstore_api.native.docs import load_spec
from tests.e2e.server import ServerProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary (./dev test installs Debian's)"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # With tokens: the docs must be readable without one (a browser has none).
    config = (
        '[auth]\ntokens = [{token = "docs-test-token-0123456789", access = "read"}]\n'
    )
    with ServerProcess(tmp_path_factory.mktemp("docs"), config=config) as srv:
        yield srv


def chromium(*args: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            # Nothing but the service: a page that needed a CDN would break.
            "--proxy-server=http://127.0.0.1:9",
            "--proxy-bypass-list=127.0.0.1",
            *args,
        ],
        capture_output=True,
        timeout=120,
    )


def test_the_page_renders_every_route(server, tmp_path):
    result = chromium("--dump-dom", f"{server.url}/v1/docs", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout.decode()
    assert "<h1>blobstore native API" in dom
    # Self-contained: nothing to fetch from anywhere, this service included.
    for fetching in ("<script", "<link", "src=", "@import", "url("):
        assert fetching not in dom, fetching
    _, spec = load_spec()
    for path, item in spec["paths"].items():
        assert f"<h2>{html.escape(path)}</h2>" in dom, path
        for method, op in item.items():
            if isinstance(op, dict) and "summary" in op:
                assert html.escape(op["summary"], quote=False) in dom, (method, path)


def test_a_screenshot_of_the_page_is_a_picture(server, tmp_path):
    shot = tmp_path / "docs.png"
    result = chromium(
        f"--screenshot={shot}",
        "--window-size=1200,1600",
        f"{server.url}/v1/docs",
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 1600)
    # A blank 1200x1600 page compresses to a few KiB; text, tables and the
    # coloured method badges make far more.
    assert len(data) > 60_000, len(data)
