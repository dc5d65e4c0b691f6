"""ReadAhead hands over the same bytes, in order, and the source's errors
at the point they happened."""

import io
import os

import pytest

from blobstore.errors import HashMismatch
from blobstore.hashing import VerifyingReader
from blobstore.readahead import ReadAhead
from tests.helpers import FailingReader
from tests.helpers import NoSeekReader
from tests.helpers import hash_of


@pytest.mark.parametrize("size", [0, 1, 1000, 4096, 4097, 100_000])
@pytest.mark.parametrize("want", [1, 333, 4096, 65536])
def test_same_bytes_in_order(size, want):
    data = os.urandom(size)
    ra = ReadAhead(io.BytesIO(data), chunk_size=4096, depth=2)
    got = bytearray()
    buf = bytearray(want)
    while n := ra.readinto(buf):
        got += buf[:n]
    ra.close()
    assert bytes(got) == data


def test_source_without_readinto():
    with ReadAhead(NoSeekReader(b"abc" * 5000), chunk_size=1000) as ra:
        assert ra.read() == b"abc" * 5000


def test_error_arrives_after_the_bytes_before_it():
    ra = ReadAhead(FailingReader(b"x" * 10_000), chunk_size=4096)
    got = bytearray()
    buf = bytearray(4096)
    with pytest.raises(ConnectionResetError):
        while n := ra.readinto(buf):
            got += buf[:n]
    assert bytes(got) == b"x" * 10_000
    ra.close()


def test_verification_failure_propagates():
    src = VerifyingReader(io.BytesIO(b"data" * 1000), 4000, hash_of(b"other"))
    with ReadAhead(src, chunk_size=1024) as ra, pytest.raises(HashMismatch):
        ra.read()


def test_close_before_the_end_stops_the_thread():
    ra = ReadAhead(io.BytesIO(b"y" * 1_000_000), chunk_size=1024, depth=2)
    assert ra.read(10) == b"y" * 10
    ra.close()
    assert not ra._thread.is_alive()
