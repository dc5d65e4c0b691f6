"""Writeback: early, asynchronous writeback of a shard being written.

It must never change what is written nor fail a write; on Linux it asks the
kernel once per window, drops from the page cache what is more than KEEP
behind the write (the file's resident size, by util-linux's fincore, stays
bounded), and it gives up quietly where the call is refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from blobstore.backends.erasure import writeback
from blobstore.backends.erasure.writeback import Writeback

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="sync_file_range is Linux's"
)


@linux_only
def test_requests_writeback_once_per_window(tmp_path):
    data = os.urandom(64 * 1024)
    fd = os.open(tmp_path / "shard", os.O_RDWR | os.O_CREAT)
    try:
        wb = Writeback(fd, window=256 * 1024)
        assert wb.enabled
        for i in range(10):
            os.write(fd, data)
            wb.wrote(len(data))
            # Handed over only at whole windows: after 4, 8 writes.
            assert wb._started == (i + 1) // 4 * 4 * len(data)
        assert wb.enabled
        os.fsync(fd)
    finally:
        os.close(fd)
    assert (tmp_path / "shard").read_bytes() == data * 10


def resident_bytes(path) -> int:
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.split()[0])


@linux_only
@pytest.mark.skipif(shutil.which("fincore") is None, reason="needs util-linux fincore")
def test_what_is_far_behind_the_write_leaves_the_page_cache(tmp_path):
    kind = subprocess.run(
        ["stat", "-f", "-c", "%T", str(tmp_path)], capture_output=True, text=True
    ).stdout.strip()
    if kind in ("tmpfs", "ramfs"):
        pytest.skip(f"{kind} has no disk to drop pages to")
    window, keep = 1 << 20, 4 << 20
    data = os.urandom(window)
    small, big = tmp_path / "small", tmp_path / "big"
    for path, windows in ((small, 4), (big, 40)):
        fd = os.open(path, os.O_RDWR | os.O_CREAT)
        try:
            wb = Writeback(fd, window=window, keep=keep)
            for _ in range(windows):
                os.write(fd, data)
                wb.wrote(len(data))
            assert wb.enabled
            os.fsync(fd)
        finally:
            os.close(fd)
    assert resident_bytes(small) == 4 * window  # up to KEEP: all kept
    # 40 MiB written, at most KEEP plus the window in flight still cached.
    assert resident_bytes(big) <= keep + 2 * window
    assert big.read_bytes() == data * 40


@linux_only
def test_a_file_that_refuses_it_turns_it_off_without_failing():
    read_end, write_end = os.pipe()  # sync_file_range on a pipe: ESPIPE
    try:
        wb = Writeback(write_end, window=1)
        wb.wrote(10)
        assert not wb.enabled
        wb.wrote(10)  # no further attempts, no error
    finally:
        os.close(read_end)
        os.close(write_end)


def test_without_the_call_it_does_nothing(monkeypatch, tmp_path):
    # Platforms without sync_file_range (macOS, musl without it).
    monkeypatch.setattr(writeback, "_sync_file_range", None)
    fd = os.open(tmp_path / "shard", os.O_RDWR | os.O_CREAT)
    try:
        wb = Writeback(fd, window=1)
        assert not wb.enabled
        wb.wrote(100)
    finally:
        os.close(fd)
