"""Flame graphs of the server side of a 1 GiB PUT, native and S3 (boto3).

::

    .venv/bin/pip install py-spy
    .venv/bin/python -m bench.profile bench/profiles

It starts ``blobstore serve`` (one worker, S3 on), and for each PUT records
the worker with py-spy (``--threads``, 250 Hz) into ``native-put-1GiB.svg``
and ``s3-put-1GiB.svg``, printing the throughput and the service's CPU
seconds. BENCHMARKS.md reads them: which thread hashes what, and which one
the others wait for.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.clients import put_stream
from bench.content import Content
from bench.scenarios import _boto3_client
from bench.service import S3_ACCESS_KEY
from bench.service import S3_SECRET_KEY
from bench.service import Blobstore

GiB = 1 << 30


def _record(pid: int, out: Path) -> subprocess.Popen:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    spy = subprocess.Popen(
        [
            py_spy,
            "record",
            "--threads",
            "--nonblocking",
            "-r",
            "250",
            "-f",
            "flamegraph",
            "-o",
            str(out),
            "-p",
            str(pid),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.5)  # attached before the PUT starts
    return spy


def _stop(spy: subprocess.Popen) -> None:
    spy.send_signal(signal.SIGINT)  # py-spy writes the graph on SIGINT
    spy.wait(timeout=60)


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "bench/profiles")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="blobstore-profile-") as tmp:
        service = Blobstore(Path(tmp), Blobstore.s3_config(), workers=1, threads=4)
        service.start()
        try:
            worker = service.pids()[1]
            s3 = _boto3_client(service.url, S3_ACCESS_KEY, S3_SECRET_KEY)
            s3.create_bucket(Bucket="bench")

            content = Content(GiB, f"native-{time.time_ns()}")
            spy, cpu = (
                _record(worker, out / "native-put-1GiB.svg"),
                service.cpu_seconds(),
            )
            t = put_stream(
                service.endpoint(), "PUT", f"/{content.sha384}", content.chunks(), GiB
            )
            _stop(spy)
            print(
                f"native PUT 1 GiB: {t.mb_per_s:.0f} MB/s, "
                f"server CPU {service.cpu_seconds() - cpu:.2f} s"
            )

            content = Content(GiB, f"s3-{time.time_ns()}")
            crc = content.crc32_b64
            spy, cpu = _record(worker, out / "s3-put-1GiB.svg"), service.cpu_seconds()
            started = time.perf_counter()
            s3.put_object(
                Bucket="bench",
                Key="big",
                Body=content.file(),
                ContentLength=GiB,
                ChecksumCRC32=crc,
            )
            seconds = time.perf_counter() - started
            _stop(spy)
            print(
                f"S3 PUT 1 GiB: {GiB / seconds / 1e6:.0f} MB/s, "
                f"server CPU {service.cpu_seconds() - cpu:.2f} s"
            )
        finally:
            service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
