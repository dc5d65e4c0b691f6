"""Load generators that stay out of the way of what they measure.

* Large transfers (:func:`put_stream`, :func:`get_discard`) use
  ``http.client`` directly: a PUT sends the same preloaded buffers with
  ``sendall`` (no per-chunk Python work beyond the loop), a GET reads into
  one reused 4 MiB buffer with ``readinto``.
* Small operations run in worker *processes* (:func:`run_small`), one
  keep-alive connection each, so 16 concurrent clients are 16 processes and
  the GIL of one load generator never limits the service.

Every function reports the client's own CPU time, so a table can show that
the client was not the bottleneck.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import multiprocessing
import os
import queue
import random
import resource
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

__all__ = [
    "Endpoint",
    "SmallResult",
    "Transfer",
    "cpu_seconds",
    "get_discard",
    "put_stream",
    "run_small",
]

_RECV_BUFFER = 4 << 20


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: host, port, a path prefix and extra headers (auth)."""

    host: str
    port: int
    prefix: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    #: (access key, secret key): sign every request with SigV4 (S3), as a
    #: real S3 client does, its cost in the client's CPU column.
    s3_credentials: tuple[str, str] | None = None

    def connect(self, timeout: float = 300) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        conn.connect()
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn


@dataclass
class Transfer:
    """One large transfer: status, bytes, wall seconds, client CPU seconds
    (and the service's, where the scenario measured it)."""

    status: int
    nbytes: int
    seconds: float
    cpu: float
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    server_cpu: float | None = None

    @property
    def server_cpu_per_gib(self) -> float | None:
        if self.server_cpu is None:
            return None
        return self.server_cpu / (self.nbytes / (1 << 30))

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / self.seconds / 1e6


class HTTPFailure(RuntimeError):
    """The service answered a benchmark request with an unexpected status."""


def put_stream(
    endpoint: Endpoint,
    method: str,
    path: str,
    chunks: Iterable[bytes | memoryview],
    length: int,
    headers: dict[str, str] | None = None,
    expect: tuple[int, ...] = (200, 201),
) -> Transfer:
    """Send *length* bytes from *chunks* as the body of one request."""
    conn = endpoint.connect()
    try:
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        conn.putrequest(method, endpoint.prefix + path, skip_accept_encoding=True)
        for name, value in (*endpoint.headers, *(headers or {}).items()):
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        sock = conn.sock
        assert sock is not None
        for chunk in chunks:
            sock.sendall(chunk)
        response = conn.getresponse()
        body = response.read()
        seconds = time.perf_counter() - t0
        cpu = cpu_seconds() - cpu0
    finally:
        conn.close()
    if response.status not in expect:
        raise HTTPFailure(f"{method} {path}: {response.status} {body[:500]!r}")
    return Transfer(
        response.status, length, seconds, cpu, body, dict(response.getheaders())
    )


def get_discard(
    endpoint: Endpoint, path: str, expect_size: int | None = None
) -> Transfer:
    """GET *path* and throw the body away as fast as the socket delivers."""
    conn = endpoint.connect()
    buf = bytearray(_RECV_BUFFER)
    try:
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        conn.request("GET", endpoint.prefix + path, headers=dict(endpoint.headers))
        response = conn.getresponse()
        if response.status != 200:
            raise HTTPFailure(
                f"GET {path}: {response.status} {response.read()[:500]!r}"
            )
        total = 0
        while n := response.readinto(buf):
            total += n
        seconds = time.perf_counter() - t0
        cpu = cpu_seconds() - cpu0
    finally:
        conn.close()
    if expect_size is not None and total != expect_size:
        raise HTTPFailure(f"GET {path}: {total} bytes, expected {expect_size}")
    return Transfer(200, total, seconds, cpu)


# -- small operations, in worker processes --------------------------------------


@dataclass
class SmallSpec:
    """What one small-operation worker does (picklable)."""

    endpoint: Endpoint
    op: str  # "put" or "get"
    #: "blobstore" (PUT /v1/blobs/<sha384>), "swift" (PUT <prefix>/<name>)
    #: or "s3" (PUT /<bucket>/<name>, signed with the endpoint's credentials)
    style: str
    size: int
    seconds: float
    worker: int
    keys: tuple[str, ...] = ()  # for "get": what to read


@dataclass
class SmallResult:
    """Operations of all workers: latencies (s), keys written, client CPU."""

    ops: int
    seconds: float
    latencies: list[float]
    cpu: float
    keys: list[str]

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _small_worker(spec: SmallSpec, start: Any, results: Any) -> None:
    try:
        results.put(_small_loop(spec, start))
    except BaseException as exc:  # reported to the parent, which raises
        start.abort()  # nobody waits for a worker that will never come
        results.put(exc)


def _small_loop(
    spec: SmallSpec, start: Any
) -> tuple[int, float, list[float], float, list[str]]:
    base = bytearray(os.urandom(spec.size))
    rng = random.Random(spec.worker)
    headers = dict(spec.endpoint.headers)
    latencies: list[float] = []
    keys: list[str] = []
    seq = 0
    sign = _s3_signer(spec.endpoint) if spec.style == "s3" else None
    start.wait()  # every worker is ready: the clock starts for all
    # Connected only now: spawning 64 clients on two cores can take longer
    # than the server lets a connection sit silent before its first request
    # (it closes it then, as it should). Each worker times its own window.
    conn = spec.endpoint.connect(timeout=60)
    cpu0 = cpu_seconds()
    began = time.perf_counter()
    deadline = began + spec.seconds
    while True:
        t0 = time.perf_counter()
        if t0 >= deadline:
            break
        if spec.op == "put":
            # Unique content per operation: the store must not dedup it.
            base[:16] = f"{spec.worker:6d}{seq:10d}".encode()
            seq += 1
            data = bytes(base)
            if spec.style == "blobstore":
                key = hashlib.sha384(data).hexdigest()
            else:
                key = f"o{spec.worker}-{seq}"
            path = f"{spec.endpoint.prefix}/{key}"
            extra = sign("PUT", path, data) if sign else {}
            conn.request("PUT", path, data, {**headers, **extra})
            keys.append(key)
            expect: tuple[int, ...] = (200, 201)
        else:
            key = spec.keys[rng.randrange(len(spec.keys))]
            path = f"{spec.endpoint.prefix}/{key}"
            extra = sign("GET", path, b"") if sign else {}
            conn.request("GET", path, headers={**headers, **extra})
            expect = (200,)
        response = conn.getresponse()
        body = response.read()
        if response.status not in expect:
            raise HTTPFailure(f"{spec.op} {key}: {response.status} {body[:300]!r}")
        if spec.op == "get" and len(body) != spec.size:
            raise HTTPFailure(f"get {key}: {len(body)} bytes, expected {spec.size}")
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - began
    cpu = cpu_seconds() - cpu0
    conn.close()
    return len(latencies), elapsed, latencies, cpu, keys


def _s3_signer(endpoint: Endpoint) -> Any:
    """``sign(method, path, body) -> headers``: botocore's SigV4 for S3."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    if endpoint.s3_credentials is None:
        raise ValueError("an s3 endpoint needs s3_credentials")
    auth = S3SigV4Auth(Credentials(*endpoint.s3_credentials), "s3", "us-east-1")
    base = f"http://{endpoint.host}:{endpoint.port}"

    def sign(method: str, path: str, body: bytes) -> dict[str, str]:
        request = AWSRequest(method=method, url=base + path, data=body)
        auth.add_auth(request)
        return dict(request.headers.items())

    return sign


def _collect(results: Any, procs: list[Any], deadline: float) -> list[Any]:
    """One outcome per worker; a worker that dies without one is an error
    (it could not even report: killed, or failed to start)."""
    outcomes: list[Any] = []
    while len(outcomes) < len(procs):
        try:
            outcomes.append(results.get(timeout=0.5))
            continue
        except queue.Empty:
            pass
        dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
        if dead:
            raise RuntimeError(f"a client worker died (exit code {dead[0]})")
        if time.monotonic() > deadline:
            raise TimeoutError("client workers did not report in time")
    return outcomes


def run_small(
    endpoint: Endpoint,
    op: str,
    style: str,
    *,
    size: int,
    clients: int,
    seconds: float,
    keys: list[str] | None = None,
) -> SmallResult:
    """*clients* processes doing *op* back to back for *seconds*."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(clients + 1)
    results = ctx.Queue()
    procs = []
    for worker in range(clients):
        spec = SmallSpec(endpoint, op, style, size, seconds, worker, tuple(keys or ()))
        proc = ctx.Process(
            target=_small_worker, args=(spec, start, results), daemon=True
        )
        proc.start()
        procs.append(proc)
    try:
        with contextlib.suppress(threading.BrokenBarrierError):
            start.wait(timeout=120)  # broken: a worker failed; its error follows
        outcomes = _collect(results, procs, deadline=time.monotonic() + seconds + 120)
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join()
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    # The cause first, not the workers that merely saw the barrier break.
    errors.sort(key=lambda e: isinstance(e, threading.BrokenBarrierError))
    if errors:
        raise errors[0]
    latencies: list[float] = []
    all_keys: list[str] = []
    ops = 0
    rate = cpu = 0.0
    for n, elapsed, lat, c, k in outcomes:
        ops += n
        rate += n / elapsed  # each worker over its own window
        latencies += lat
        cpu += c
        all_keys += k
    return SmallResult(ops, ops / rate if rate else seconds, latencies, cpu, all_keys)
