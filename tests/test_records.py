"""Checked accessors that replace asserts (they must hold under python -O)."""

import io
from datetime import UTC
from datetime import datetime

import pytest

from blobstore.errors import BlobStoreError
from blobstore.errors import Corrupt
from blobstore.hashing import VerifyingReader
from blobstore.records import BlobRecord

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_record_with_neither_object_nor_index_is_corrupt():
    record = BlobRecord("ab" * 48, 3, NOW)
    with pytest.raises(Corrupt, match="no backend object"):
        record.object_name()
    with pytest.raises(Corrupt, match="not a composite"):
        record.parts()
    assert BlobRecord("ab" * 48, 3, NOW, name="n").object_name() == "n"


def test_the_hash_is_there_only_once_everything_was_read():
    reader = VerifyingReader(io.BytesIO(b"abc"), 3)
    with pytest.raises(BlobStoreError, match="before it was all read"):
        reader.result()
    reader.drain()
    assert len(reader.result()) == 96
