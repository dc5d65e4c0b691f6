"""The one seek arithmetic (blobstore.seeking), as io.BytesIO defines it."""

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobstore.seeking import seek_position


@given(
    size=st.integers(0, 100),
    pos=st.integers(0, 120),
    offset=st.integers(-150, 150),
    whence=st.sampled_from([io.SEEK_SET, io.SEEK_CUR, io.SEEK_END]),
)
def test_agrees_with_bytesio(size, pos, offset, whence):
    """Where BytesIO lands, we land; where it would go below 0 (BytesIO
    raises for SEEK_SET and clamps for the others) we refuse: a reader asked
    for a negative position has a bug worth hearing about."""
    ref = io.BytesIO(bytes(size))
    ref.seek(pos)
    base = {io.SEEK_SET: 0, io.SEEK_CUR: pos, io.SEEK_END: size}[whence]
    if base + offset < 0:
        with pytest.raises(ValueError, match="negative seek position"):
            seek_position(pos, size, offset, whence)
    else:
        assert seek_position(pos, size, offset, whence) == ref.seek(offset, whence)


def test_unknown_whence():
    with pytest.raises(ValueError, match="invalid whence"):
        seek_position(0, 10, 0, 7)
