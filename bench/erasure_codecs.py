"""Measure the erasure-coding libraries the erasure-posix backend could use.

Encodes and decodes (with two *data* shards missing, the expensive case) in
stripes of one block, as the backend does, and prints MB/s of input data::

    .venv/bin/python bench/erasure_codecs.py [--block-size 1048576] [--seconds 1]

pyeclib's PyPI wheel bundles liberasurecode and ISA-L, so its ``isa_l_*``
types need no system package; ``jerasure_*`` does (and is deprecated), so it
is reported only when it loads. zfec is measured with the same stripes.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

LAYOUTS = ((4, 2), (8, 4))
PYECLIB_TYPES = (
    "isa_l_rs_vand",
    "isa_l_rs_cauchy",
    "liberasurecode_rs_vand",
    "jerasure_rs_vand",
)


def rate(fn: Callable[[], object], nbytes: int, seconds: float) -> float:
    """MB/s of *nbytes* per call of *fn*: the best of five runs of *seconds*/5.

    The best, not the mean, because the machine is shared: other load only
    ever makes a run slower, so the fastest run is the closest to the truth.
    """
    fn()  # warm up (tables, allocations)
    best = 0.0
    for _ in range(5):
        calls = 0
        start = time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / 5:
                break
        best = max(best, calls * nbytes / elapsed / 1e6)
    return best


def bench_pyeclib(ec_type: str, k: int, m: int, block: bytes, seconds: float):
    from pyeclib.ec_iface import ECDriver

    try:
        driver = ECDriver(k=k, m=m, ec_type=ec_type)
    except Exception as exc:  # the library says why (e.g. backend missing)
        return f"unavailable ({type(exc).__name__})"
    fragments = driver.encode(block)
    # Two data fragments missing: decode needs the parity to rebuild them.
    survivors = fragments[2:]
    assert driver.decode(survivors) == block
    enc = rate(lambda: driver.encode(block), len(block), seconds)
    dec = rate(lambda: driver.decode(survivors), len(block), seconds)
    return enc, dec


def bench_zfec(k: int, m: int, block: bytes, seconds: float):
    import zfec

    n = k + m
    size = -(-len(block) // k)
    padded = block + bytes(size * k - len(block))
    pieces = tuple(padded[i * size : (i + 1) * size] for i in range(k))
    encoder = zfec.Encoder(k, n)
    decoder = zfec.Decoder(k, n)
    shares = encoder.encode(pieces)
    nums = tuple(range(2, 2 + k))  # shares 0 and 1 (data) missing
    chosen = tuple(shares[i] for i in nums)
    assert b"".join(decoder.decode(chosen, nums))[: len(block)] == block

    def encode() -> object:
        # Split + pad like the backend would, then encode.
        padded = block + bytes(size * k - len(block))
        return encoder.encode(
            tuple(padded[i * size : (i + 1) * size] for i in range(k))
        )

    def decode() -> object:
        return b"".join(decoder.decode(chosen, nums))

    return rate(encode, len(block), seconds), rate(decode, len(block), seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block-size", type=int, default=1 << 20)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    block = os.urandom(args.block_size)
    print(f"block size {args.block_size} bytes; MB/s of input data")
    print(f"{'library':34} {'k+m':>5} {'encode':>10} {'decode-2':>10}")
    rows: list[tuple[str, Callable[[int, int], object]]] = [
        (f"pyeclib {t}", lambda k, m, t=t: bench_pyeclib(t, k, m, block, args.seconds))
        for t in PYECLIB_TYPES
    ]
    rows.append(("zfec", lambda k, m: bench_zfec(k, m, block, args.seconds)))
    # A throwaway run first: the first timed loop in a fresh process pays for
    # the allocator growing its arenas and would look several times slower.
    bench_pyeclib(PYECLIB_TYPES[0], *LAYOUTS[0], block, args.seconds)
    for label, run in rows:
        for k, m in LAYOUTS:
            result = run(k, m)
            if isinstance(result, str):
                print(f"{label:34} {k}+{m:<3} {result}")
            else:
                enc, dec = result
                print(f"{label:34} {k}+{m:<3} {enc:10.0f} {dec:10.0f}")


if __name__ == "__main__":
    main()
