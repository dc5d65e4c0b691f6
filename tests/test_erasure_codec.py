"""The erasure codecs: any k of the k + m fragments give the block back."""

from __future__ import annotations

import itertools
import os

import pytest

from blobstore.backends.erasure.codec import codec_for
from blobstore.errors import Corrupt


@pytest.mark.parametrize(("k", "m"), [(1, 1), (2, 2), (4, 2), (6, 6), (10, 5)])
def test_every_set_of_k_survivors_decodes(k, m):
    # ISA-L's Vandermonde matrix fails this for some sets once m >= 5 (6+6,
    # 10+5); the Cauchy one the backend uses must not.
    codec = codec_for(k, m)
    block = os.urandom(997)
    fragments = codec.encode(memoryview(block))
    assert len(fragments) == k + m
    for keep in itertools.combinations(range(k + m), k):
        assert codec.decode({i: fragments[i] for i in keep}, len(block)) == block


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("length", [1, 2, 4095, 4096, 4097])
def test_stripe_codec_round_trips(k, length):
    codec = codec_for(k, 0)
    block = os.urandom(length)
    fragments = codec.encode(memoryview(block))
    assert len(fragments) == k
    assert len({len(f) for f in fragments}) == 1  # equal, the last one padded
    assert codec.decode(dict(enumerate(map(bytes, fragments))), length) == block


def test_one_stripe_is_the_block_itself():
    block = memoryview(bytearray(b"abc"))
    assert codec_for(1, 0).encode(block)[0] is block


def test_decode_of_wrong_length_is_corrupt():
    codec = codec_for(2, 1)
    fragments = codec.encode(memoryview(b"0123456789"))
    with pytest.raises(Corrupt):
        codec.decode({0: fragments[0], 1: fragments[1]}, 11)
