"""Soak: many clients, mixed work, for a bounded time, against a real service.

::

    python -m bench.soak                       # 64 clients for 10 minutes
    python -m bench.soak --seconds 30 --json   # the suite's version

It starts ``blobstore serve`` (gunicorn, several workers; S3 on) in a
temporary directory, then runs ``--clients`` concurrent clients spread over
a few processes, each a loop of randomly chosen operations over the native
API (requests) and S3 (boto3): PUTs of 4 KiB to 8 MiB (a share of them
deduplicated), GETs checked against the SHA-384 of what was put, whole and
ranged, named refs set, read and deleted, S3 objects put, read, listed and
deleted. Each client works in its own names, so no answer but the expected
one is correct: any other status (a documented 4xx too: none is expected
of these requests), a connection error or wrong bytes is an *error*. The
one exception is HTTP's keep-alive race (RFC 9112 9.3.1): the service closes
a connection idle for its keep-alive time just as a client sends on it, and
the native clients, like any HTTP client, send again once on a new
connection (every native request here is idempotent: puts name their hash).
Those are counted and reported as *reconnects*, not hidden.

It reports, per operation, the count and p50/p99/max latency, the errors
with the first few messages, and the service's resident memory (master and
workers): after the warm-up, at the end, the growth between and the peak.
Exit status 0 when there were no errors, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from bench.service import S3_ACCESS_KEY
from bench.service import S3_SECRET_KEY
from bench.service import Blobstore

__all__ = ["Outcome", "main", "run"]

KiB = 1024
MiB = 1024 * KiB
#: Threads per client process: enough processes that the clients' own GIL
#: does not cap the load, few enough not to crowd a small machine.
THREADS_PER_PROCESS = 16
#: How the operations are mixed (weights).
MIX = {
    "native_put": 20,
    "native_put_dedup": 5,
    "native_get": 20,
    "native_get_range": 8,
    "ref_put": 8,
    "ref_get": 8,
    "ref_delete": 4,
    "s3_put": 12,
    "s3_get": 10,
    "s3_list": 3,
    "s3_delete": 4,
}


@dataclass
class Outcome:
    """What one client process saw (merged over processes in :func:`run`)."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    reconnects: int = 0

    def merge(self, other: Outcome) -> None:
        for op, values in other.latencies.items():
            self.latencies[op].extend(values)
        self.errors.extend(other.errors[: max(0, 20 - len(self.errors))])
        self.error_count += other.error_count
        self.reconnects += other.reconnects


def _size(rng: random.Random) -> int:
    """4 KiB to 8 MiB, log-uniform: as many small blobs as large ones."""
    return int(math.exp(rng.uniform(math.log(4 * KiB), math.log(8 * MiB))))


class _Payloads:
    """Random bytes to slice payloads from without generating each one."""

    def __init__(self, rng: random.Random) -> None:
        self._pool = rng.randbytes(16 * MiB)

    def make(self, rng: random.Random, size: int) -> bytes:
        start = rng.randrange(0, len(self._pool) - size + 1)
        # A fresh prefix: a new blob, not a dedup of an earlier slice.
        return rng.randbytes(16) + self._pool[start : start + size - 16]


class _Client:
    """One client: a thread with its own HTTP session and its own names."""

    def __init__(self, name: str, url: str, s3: Any, payloads: _Payloads, seed: int):
        import requests

        self.name = name
        self.url = url
        self.s3 = s3
        self.bucket = "soak"
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self.http = requests.Session()
        # Once, on a dropped connection only (never on a status).
        once = Retry(total=1, connect=1, read=1, status=0, other=0,
                     allowed_methods=None, raise_on_status=False)  # fmt: skip
        self.http.mount("http://", HTTPAdapter(max_retries=once))
        self.payloads = payloads
        self.rng = random.Random(seed)
        self.blobs: list[tuple[str, int]] = []  # (hash, size) put by this client
        self.blob_bytes: dict[str, bytes] = {}
        self.refs: dict[str, str] = {}
        self.objects: dict[str, str] = {}  # key -> sha384 of its bytes
        self.outcome = Outcome()

    # -- the loop -------------------------------------------------------------

    def run(self, deadline: float) -> None:
        ops = list(MIX)
        weights = list(MIX.values())
        while time.monotonic() < deadline:
            op = self.rng.choices(ops, weights)[0]
            started = time.monotonic()
            try:
                done = getattr(self, op)()
            except Exception as exc:  # an error: keep a few to show
                self.outcome.error_count += 1
                if len(self.outcome.errors) < 20:
                    self.outcome.errors.append(
                        f"{self.name} {op}: {type(exc).__name__}: {exc}"
                    )
                continue
            if done:
                self.outcome.latencies[op].append(time.monotonic() - started)

    # -- native ---------------------------------------------------------------

    def _expect(self, response: Any, *statuses: int) -> Any:
        retries = getattr(response.raw, "retries", None)
        if retries is not None and retries.history:
            self.outcome.reconnects += len(retries.history)
        if response.status_code in statuses:
            return response
        raise RuntimeError(
            f"{response.request.method} {response.request.path_url}: "
            f"{response.status_code} {response.text[:200]!r}"
        )

    def _remember(self, digest: str, data: bytes) -> None:
        self.blobs.append((digest, len(data)))
        # Keep the bytes of small blobs to check ranges; a hash for the rest.
        if len(data) <= 256 * KiB:
            self.blob_bytes[digest] = data
        if len(self.blobs) > 64:
            old, _ = self.blobs.pop(0)
            self.blob_bytes.pop(old, None)

    def native_put(self) -> bool:
        data = self.payloads.make(self.rng, _size(self.rng))
        digest = hashlib.sha384(data).hexdigest()
        answer = self._expect(
            self.http.post(
                f"{self.url}/v1/blobs", params={"hash": digest}, data=data, timeout=120
            ),
            200,
            201,
        ).json()
        if answer["hash"] != digest or answer["size"] != len(data):
            raise RuntimeError(
                f"put answered {answer}, sent {digest} ({len(data)} bytes)"
            )
        self._remember(digest, data)
        return True

    def native_put_dedup(self) -> bool:
        if not self.blob_bytes:
            return False
        digest = self.rng.choice(list(self.blob_bytes))
        data = self.blob_bytes[digest]
        answer = self._expect(
            self.http.put(f"{self.url}/v1/blobs/{digest}", data=data, timeout=120),
            200,
            201,
        ).json()
        if answer["hash"] != digest:
            raise RuntimeError(f"dedup put answered {answer}")
        return True

    def native_get(self) -> bool:
        if not self.blobs:
            return False
        digest, size = self.rng.choice(self.blobs)
        response = self._expect(
            self.http.get(f"{self.url}/v1/blobs/{digest}", timeout=120), 200
        )
        body = response.content
        if len(body) != size or hashlib.sha384(body).hexdigest() != digest:
            raise RuntimeError(
                f"GET {digest[:16]}: wrong bytes ({len(body)} of {size})"
            )
        return True

    def native_get_range(self) -> bool:
        if not self.blob_bytes:
            return False
        digest = self.rng.choice(list(self.blob_bytes))
        data = self.blob_bytes[digest]
        start = self.rng.randrange(len(data))
        end = self.rng.randrange(start, len(data))
        response = self._expect(
            self.http.get(
                f"{self.url}/v1/blobs/{digest}",
                headers={"Range": f"bytes={start}-{end}"},
                timeout=120,
            ),
            206,
        )
        if response.content != data[start : end + 1]:
            raise RuntimeError(f"range {start}-{end} of {digest[:16]}: wrong bytes")
        return True

    def ref_put(self) -> bool:
        if not self.blobs:
            return False
        name = f"{self.name}/ref{self.rng.randrange(16)}"
        digest, _ = self.rng.choice(self.blobs)
        self._expect(
            self.http.put(
                f"{self.url}/v1/refs/{name}", json={"hash": digest}, timeout=60
            ),
            200,
            201,
        )
        self.refs[name] = digest
        return True

    def ref_get(self) -> bool:
        if not self.refs:
            return False
        name = self.rng.choice(list(self.refs))
        answer = self._expect(
            self.http.get(f"{self.url}/v1/refs/{name}", timeout=60), 200
        )
        if answer.json()["hash"] != self.refs[name]:
            raise RuntimeError(f"ref {name}: {answer.json()} not {self.refs[name]}")
        return True

    def ref_delete(self) -> bool:
        if not self.refs:
            return False
        name = self.rng.choice(list(self.refs))
        self._expect(self.http.delete(f"{self.url}/v1/refs/{name}", timeout=60), 204)
        del self.refs[name]
        return True

    # -- S3 -------------------------------------------------------------------

    def s3_put(self) -> bool:
        key = f"{self.name}/obj{self.rng.randrange(32)}"
        data = self.payloads.make(self.rng, _size(self.rng))
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        self.objects[key] = hashlib.sha384(data).hexdigest()
        return True

    def s3_get(self) -> bool:
        if not self.objects:
            return False
        key = self.rng.choice(list(self.objects))
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        if hashlib.sha384(body).hexdigest() != self.objects[key]:
            raise RuntimeError(f"S3 GET {key}: wrong bytes ({len(body)})")
        return True

    def s3_list(self) -> bool:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=f"{self.name}/")
        keys = {o["Key"] for o in listed.get("Contents", [])}
        if keys != set(self.objects):
            raise RuntimeError(
                f"S3 list {self.name}/: {sorted(keys ^ set(self.objects))[:3]} differ"
            )
        return True

    def s3_delete(self) -> bool:
        if not self.objects:
            return False
        key = self.rng.choice(list(self.objects))
        self.s3.delete_object(Bucket=self.bucket, Key=key)
        del self.objects[key]
        return True


def _s3_client(endpoint: str, threads: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name="us-east-1",
        config=Config(
            max_pool_connections=threads,
            # Every failure is to be seen, not retried away.
            retries={"max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": "path"},
            connect_timeout=30,
            read_timeout=120,
        ),
    )


def _process(index: int, threads: int, url: str, seconds: float, results: Any) -> None:
    s3 = _s3_client(url, threads)
    payloads = _Payloads(random.Random(index))
    clients = [
        _Client(f"p{index}c{i}", url, s3, payloads, seed=index * 1000 + i)
        for i in range(threads)
    ]
    deadline = time.monotonic() + seconds
    workers = [threading.Thread(target=c.run, args=(deadline,)) for c in clients]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    outcome = Outcome()
    for c in clients:
        outcome.merge(c.outcome)
    results.put(
        {
            "latencies": dict(outcome.latencies),
            "errors": outcome.errors,
            "error_count": outcome.error_count,
            "reconnects": outcome.reconnects,
        }
    )


def _rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * KiB
        except OSError:
            continue
    return total


def run(
    seconds: float, clients: int, workers: int = 2, threads: int = 16
) -> dict[str, Any]:
    """One soak; returns the report as a dict (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="blobstore-soak-") as tmp:
        service = Blobstore(
            Path(tmp), Blobstore.s3_config(), workers=workers, threads=threads
        )
        service.start()
        try:
            _s3_client(service.url, 1).create_bucket(Bucket="soak")
            return _drive(service, seconds, clients)
        finally:
            service.stop()


def _drive(service: Blobstore, seconds: float, clients: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    counts = [THREADS_PER_PROCESS] * (clients // THREADS_PER_PROCESS)
    if clients % THREADS_PER_PROCESS:
        counts.append(clients % THREADS_PER_PROCESS)
    load_start = os.getloadavg()
    procs = [
        ctx.Process(target=_process, args=(i, n, service.url, seconds, results))
        for i, n in enumerate(counts)
    ]
    for p in procs:
        p.start()
    # Memory: the first sample after a tenth of the run (imports, caches and
    # pools warmed up), then every second; growth is last minus first.
    samples: list[int] = []
    start = time.monotonic()
    time.sleep(max(1.0, seconds / 10))
    while any(p.is_alive() for p in procs) and time.monotonic() < start + seconds + 300:
        samples.append(_rss(service.pids()))
        time.sleep(1.0)
        if results.qsize() == len(procs):
            break
    outcome = Outcome()
    for _ in procs:
        got = results.get(timeout=300)
        part = Outcome(
            latencies=defaultdict(list, got["latencies"]),
            errors=got["errors"],
            error_count=got["error_count"],
            reconnects=got["reconnects"],
        )
        outcome.merge(part)
    for p in procs:
        p.join(timeout=60)
    elapsed = time.monotonic() - start
    return _report(outcome, samples, seconds, clients, elapsed, load_start)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _report(
    outcome: Outcome,
    samples: list[int],
    seconds: float,
    clients: int,
    elapsed: float,
    load_start: tuple[float, float, float],
) -> dict[str, Any]:
    ops = {}
    every: list[float] = []
    for op in MIX:
        values = outcome.latencies.get(op, [])
        every.extend(values)
        if values:
            ops[op] = {
                "count": len(values),
                "p50_ms": round(_percentile(values, 0.50) * 1000, 1),
                "p99_ms": round(_percentile(values, 0.99) * 1000, 1),
                "max_ms": round(max(values) * 1000, 1),
            }
    return {
        "seconds": seconds,
        "elapsed": round(elapsed, 1),
        "clients": clients,
        "load_start": load_start[0],
        "load_end": os.getloadavg()[0],
        "operations": sum(len(v) for v in outcome.latencies.values()),
        "ops_per_s": round(len(every) / seconds, 1),
        "p50_ms": round(_percentile(every, 0.50) * 1000, 1) if every else None,
        "p99_ms": round(_percentile(every, 0.99) * 1000, 1) if every else None,
        "by_operation": ops,
        "errors": outcome.error_count,
        "reconnects": outcome.reconnects,
        "first_errors": outcome.errors[:10],
        "rss_after_warmup": samples[0] if samples else None,
        "rss_end": samples[-1] if samples else None,
        "rss_growth": samples[-1] - samples[0] if samples else None,
        "rss_peak": max(samples) if samples else None,
    }


def _print(report: dict[str, Any]) -> None:
    mib = 1 / MiB
    print(
        f"soak: {report['clients']} clients for {report['seconds']:g}s "
        f"(load {report['load_start']:.2f} at start, {report['load_end']:.2f} at end)"
    )
    print(f"{'operation':<18}{'count':>8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for op, row in report["by_operation"].items():
        print(
            f"{op:<18}{row['count']:>8}{row['p50_ms']:>10}{row['p99_ms']:>10}{row['max_ms']:>10}"
        )
    print(
        f"{'all':<18}{report['operations']:>8}{report['p50_ms']:>10}{report['p99_ms']:>10}"
        f"   {report['ops_per_s']} ops/s"
    )
    if report["rss_end"] is not None:
        print(
            f"service RSS: {report['rss_after_warmup'] * mib:.0f} MiB after warm-up, "
            f"{report['rss_end'] * mib:.0f} MiB at the end "
            f"(growth {report['rss_growth'] * mib:+.1f} MiB), "
            f"peak {report['rss_peak'] * mib:.0f} MiB"
        )
    print(f"errors: {report['errors']} (reconnects: {report['reconnects']})")
    for line in report["first_errors"]:
        print(f"  {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--seconds", type=float, default=600, help="how long (default 600)"
    )
    parser.add_argument(
        "--clients", type=int, default=64, help="concurrent clients (default 64)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn workers (default 2)"
    )
    parser.add_argument(
        "--threads", type=int, default=16, help="threads per worker (default 16)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the report as one JSON object"
    )
    args = parser.parse_args(argv)
    report = run(args.seconds, args.clients, args.workers, args.threads)
    if args.json:
        print(json.dumps(report))
    else:
        _print(report)
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
