"""The scenarios: each measures one thing and adds rows to the report.

Every scenario gets a :class:`Run` (options, the report, the limits measured
at the start, the figures measured so far, and a registry of started
services that the entry point stops on the way out). Large transfers are
repeated and the best run is kept, like the limits: other load on a shared
machine only ever makes a run slower.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import limits as limits_mod
from bench.clients import Endpoint
from bench.clients import SmallResult
from bench.clients import Transfer
from bench.clients import cpu_seconds
from bench.clients import get_discard
from bench.clients import put_stream
from bench.clients import run_small
from bench.content import Content
from bench.report import Report
from bench.report import Row
from bench.scale import scale
from bench.service import S3_ACCESS_KEY
from bench.service import S3_SECRET_KEY
from bench.service import Blobstore
from bench.service import PeakRss
from bench.service import Swift

__all__ = ["SCENARIOS", "Options", "Run"]

MiB = 1 << 20
GiB = 1 << 30


@dataclass
class Options:
    quick: bool = False

    @property
    def large(self) -> int:
        return 32 * MiB if self.quick else GiB

    @property
    def medium(self) -> int:
        """The smaller size memory use is compared at."""
        return 8 * MiB if self.quick else 256 * MiB

    @property
    def runs(self) -> int:
        return 1 if self.quick else 3

    @property
    def small_seconds(self) -> float:
        return 0.3 if self.quick else 5.0

    @property
    def small_concurrency(self) -> tuple[int, ...]:
        """Clients for the small-blob scenarios (native, S3, and against
        Swift, where each is measured twice per side)."""
        return (1, 4) if self.quick else (1, 16, 64)

    @property
    def limit_bytes(self) -> int:
        return 32 * MiB if self.quick else GiB


@dataclass
class Run:
    options: Options
    report: Report
    root: Path
    limits: limits_mod.Limits | None = None
    figures: dict[str, float] = field(default_factory=dict)
    services: list[Any] = field(default_factory=list)
    _tags: int = 0
    _local: Blobstore | None = None
    _swift: Swift | None = None

    def tag(self, what: str) -> str:
        self._tags += 1
        return f"{what}-{os.getpid()}-{time.time_ns()}-{self._tags}"

    def start(self, service: Any) -> Any:
        """Start *service* and register it to be stopped at the end."""
        self.services.append(service)
        service.start()
        return service

    def stop(self, service: Any, *, remove: Path | None = None) -> None:
        service.stop()
        if service in self.services:
            self.services.remove(service)
        if remove is not None:
            shutil.rmtree(remove, ignore_errors=True)

    def local(self) -> Blobstore:
        """The local-backend service, started once and shared by the
        scenarios that use the default configuration."""
        if self._local is None:
            self._local = self.start(
                Blobstore(self.root / "local", Blobstore.local_config())
            )
        return self._local

    def swift(self) -> Swift:
        """The Swift peer, started once, on the same disk as our data."""
        if self._swift is None:
            root = self.root / "swift"
            root.mkdir(parents=True, exist_ok=True)
            self._swift = self.start(Swift(root))
        return self._swift

    def probe(self, *names: str) -> None:
        """Measure limits again, right before a run that is compared with
        them, and keep the best seen: on a shared machine the speed of a
        core or the disk swings by 2x within minutes, so a limit measured
        minutes earlier would flatter or damn the run. *names*: ``sha384``,
        ``md5``, ``disk`` (write, cold read and sendfile together)."""
        assert self.limits is not None
        size = self.options.limit_bytes // 4
        found: dict[str, float] = {}
        for name in names:
            if name == "disk":
                write, read, send = limits_mod.disk_speed(self.root, size, runs=1)
                found.update(disk_write=write, disk_read=read, sendfile=send)
            else:
                found[name] = limits_mod.hash_speed(name, size, runs=2)
        for name, speed in found.items():
            if speed <= getattr(self.limits, name):
                continue
            setattr(self.limits, name, speed)
            for row in self.report.rows:
                if row.section == "limits" and row.name == self.limits.LABELS[name]:
                    row.value = speed
                    row.note = "best of the start and the probes between runs"

    def limit(self, name: str) -> float | None:
        return getattr(self.limits, name) if self.limits is not None else None


def _mb(nbytes: int) -> str:
    return f"{nbytes // GiB} GiB" if nbytes >= GiB else f"{nbytes // MiB} MiB"


def _best(runs: list[Transfer]) -> Transfer:
    return max(runs, key=lambda t: t.mb_per_s)


def _spread(runs: list[Transfer]) -> str:
    """min / median / max of several runs (the row shows the best)."""
    if len(runs) < 2:
        return ""
    rates = sorted(t.mb_per_s for t in runs)
    return (
        f"{len(runs)} runs, min/median/max {rates[0]:,.0f} / "
        f"{statistics.median(rates):,.0f} / {rates[-1]:,.0f} MB/s"
    )


def _cpu_share(t: Transfer) -> float:
    return t.cpu / t.seconds


# -- limits -----------------------------------------------------------------------


def limits(run: Run) -> None:
    run.limits = limits_mod.measure(run.root, run.options.limit_bytes)
    for label, value in run.limits.rows():
        run.report.add(Row("limits", label, value, "MB/s"))


def _ensure_limits(run: Run) -> None:
    if run.limits is None:
        limits(run)


# -- native API, large blobs ----------------------------------------------------------


def _drop_cache(directory: Path) -> None:
    """Evict every file under *directory* from the page cache."""
    for path in directory.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _native_put(run: Run, service: Blobstore, size: int) -> tuple[Content, Transfer]:
    content = Content(size, run.tag("put"))
    digest = content.sha384  # before the clock starts
    server_cpu = service.cpu_seconds()
    transfer = put_stream(
        service.endpoint(), "PUT", f"/{digest}", content.chunks(), size
    )
    transfer.server_cpu = service.cpu_seconds() - server_cpu
    body = json.loads(transfer.body)
    if body["hash"] != digest or body["size"] != size:
        raise RuntimeError(f"PUT stored {body}, expected {digest} ({size})")
    return content, transfer


def _large_native(
    run: Run,
    service: Blobstore,
    label: str,
    alongside: Callable[[], None] | None = None,
) -> dict[str, float]:
    """PUT then GET (warm, then cold) of the large size; returns MB/s.

    :param alongside: run before each PUT, to measure what the PUT is
        compared with at the same moment.
    """
    size = run.options.large
    puts: list[Transfer] = []
    stored: list[Content] = []
    for _ in range(run.options.runs):
        if alongside is not None:
            alongside()
        content, transfer = _native_put(run, service, size)
        puts.append(transfer)
        stored.append(content)
    put = _best(puts)
    if label == "local":
        name = f"server CPU per GiB, PUT {_mb(size)}"
        _server_cpu_row(run, "native API, local", name, put)
    gets = []
    for c in stored:
        # A put leaves only its last writeback.KEEP bytes in the page cache:
        # read once to bring the blob in, then measure the cached GET.
        get_discard(service.endpoint(), f"/{c.sha384}", size)
        gets.append(get_discard(service.endpoint(), f"/{c.sha384}", size))
    warm = _best(gets)
    colds = []
    for c in stored:
        _drop_cache(service.data_dir)
        colds.append(get_discard(service.endpoint(), f"/{c.sha384}", size))
    cold = _best(colds)
    out = {"put": put.mb_per_s, "get": warm.mb_per_s, "get_cold": cold.mb_per_s}
    rows = [
        ("put", put, f"PUT {_mb(size)}", puts),
        ("get", warm, f"GET {_mb(size)} (page cache)", gets),
        ("get_cold", cold, f"GET {_mb(size)} (cold)", colds),
    ]
    for key, transfer, name, runs in rows:
        row = Row(
            f"native API, {label}",
            name,
            transfer.mb_per_s,
            "MB/s",
            client_cpu=_cpu_share(transfer),
            note=_spread(runs),
        )
        _compare_large(run, row, key, label)
    return out


def _server_cpu_row(run: Run, section: str, name: str, put: Transfer) -> None:
    """The service's CPU seconds per GiB of a PUT (the client's own hashing
    and framing excluded); S3's compared with the native PUT's: the aim is
    within 1.3x."""
    per_gib = put.server_cpu_per_gib
    if per_gib is None:
        return
    row = Row(section, name, per_gib, "s")
    if section == "native API, local":
        run.figures["cpu.native.put"] = per_gib
        run.report.add(row)
        return
    native = run.figures.get("cpu.native.put")
    row.versus = "native PUT's server CPU"
    if native:
        row.ratio = per_gib / native
        row.target = "<= 1.3"
        row.met = row.ratio <= 1.3
    run.report.add(row)


def _compare_large(run: Run, row: Row, key: str, label: str) -> None:
    report = run.report
    if key == "put" and label == "local":
        ref = min(run.limit("sha384") or 0, run.limit("disk_write") or 0)
        report.compare(row, "min(SHA-384 core, disk write)", ref, 0.8)
    elif key == "put":
        report.compare(
            row, "local PUT, runs interleaved", run.figures.get("local.put.beside"), 0.7
        )
    elif key == "get" and label == "local":
        report.compare(row, "sendfile, cached file", run.limit("sendfile"), 0.8)
    elif key == "get_cold" and label == "local":
        report.compare(row, "disk read (cold)", run.limit("disk_read"), 0.8)
    elif key == "get":
        report.compare(row, "local-backend GET (cache)", run.figures.get("local.get"))
    else:
        report.compare(
            row, "local-backend GET (cold)", run.figures.get("local.get_cold")
        )


def _memory(run: Run, service: Blobstore) -> None:
    """Peak RSS growth of the service during a PUT and a GET, at two sizes."""
    for size in (run.options.medium, run.options.large):
        content = Content(size, run.tag("rss"))
        digest = content.sha384
        with PeakRss(service.pids()) as put_rss:
            put_stream(service.endpoint(), "PUT", f"/{digest}", content.chunks(), size)
        with PeakRss(service.pids()) as get_rss:
            get_discard(service.endpoint(), f"/{digest}", size)
        for what, rss in (("PUT", put_rss), ("GET", get_rss)):
            row = Row(
                "memory",
                f"RSS growth, {what} {_mb(size)}",
                rss.growth / MiB,
                "MiB",
                note=f"peak {rss.peak / MiB:.0f} MiB over {len(service.pids())} "
                "processes",
            )
            run.figures[f"rss.{what.lower()}.{size}"] = rss.growth
            run.report.compare(row, "ceiling: 64 MiB", None, 64, lower_is_better=True)


def _multipart(run: Run, service: Blobstore, parts: int = 4) -> None:
    """A native multipart upload of the large size in *parts* parallel parts."""
    from concurrent.futures import ThreadPoolExecutor

    size = run.options.large
    content = Content(size, run.tag("multipart"))
    part_size = size // parts
    hashes = [content.part_sha384(i * part_size, part_size) for i in range(parts)]
    ep = service.endpoint("/v1/uploads")
    created = put_stream(ep, "POST", "", [], 0, expect=(201,))
    upload = json.loads(created.body)["id"]

    def send(i: int) -> Transfer:
        path = f"/{upload}/parts/{i}?hash={hashes[i]}&offset={i * part_size}"
        return put_stream(
            ep, "PUT", path, content.slice(i * part_size, part_size), part_size
        )

    cpu0, t0 = cpu_seconds(), time.perf_counter()
    with ThreadPoolExecutor(parts) as pool:
        list(pool.map(send, range(parts)))
    t_parts = time.perf_counter() - t0
    doc = json.dumps({"parts": [{"hash": h} for h in hashes]}).encode()
    finish = put_stream(
        ep,
        "POST",
        f"/{upload}/finish",
        [doc],
        len(doc),
        {"Content-Type": "application/json"},
    )
    total = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    whole = json.loads(finish.body)["hash"]
    if whole != content.sha384:
        raise RuntimeError(f"multipart finished as {whole}, expected {content.sha384}")
    section = "native API, local"
    ref = min(run.limit("sha384") or 0, run.limit("disk_write") or 0)
    run.report.compare(
        Row(
            section,
            f"multipart {_mb(size)}, {parts} parallel parts",
            size / t_parts / 1e6,
            "MB/s",
            client_cpu=cpu / total,
        ),
        "min(SHA-384 core, disk write)",
        ref,
    )
    run.report.compare(
        Row(
            section,
            "  ... including finish (re-hash)",
            size / total / 1e6,
            "MB/s",
            note="finish reads the parts to hash the whole blob",
        ),
        "min(SHA-384 core, disk write)",
        ref,
    )


def large(run: Run) -> None:
    _ensure_limits(run)
    service = run.local()
    probe = lambda: run.probe("sha384", "disk")  # noqa: E731
    for key, value in _large_native(run, service, "local", probe).items():
        run.figures[f"local.{key}"] = value
    _multipart(run, service)
    _memory(run, service)


def erasure(run: Run) -> None:
    _ensure_limits(run)
    root = run.root / "erasure"
    service = Blobstore(root, "")
    service.server.write_config(Blobstore.erasure_config(service.data_dir))
    run.start(service)
    local = run.local()

    def local_put() -> None:
        # The local backend's PUT right before each erasure PUT: the ratio
        # then compares two figures taken at the same moment.
        _, transfer = _native_put(run, local, run.options.large)
        best = run.figures.get("local.put.beside", 0.0)
        run.figures["local.put.beside"] = max(best, transfer.mb_per_s)
        beside.append(transfer)

    beside: list[Transfer] = []
    try:
        _large_native(run, service, "erasure-posix 4+2", local_put)
        if beside:
            run.report.add(
                Row(
                    "native API, erasure-posix 4+2",
                    f"local PUT {_mb(run.options.large)}, interleaved",
                    _best(beside).mb_per_s,
                    "MB/s",
                    note=_spread(beside),
                )
            )
    finally:
        run.stop(service, remove=root)


# -- S3 ------------------------------------------------------------------------------


def _boto3_client(endpoint: str, access_key: str, secret_key: str) -> Any:
    import boto3
    from botocore.config import Config

    # What boto3 does by default over HTTPS: an unsigned payload with a CRC32
    # checksum (x-amz-checksum-crc32, which the server verifies). Over plain
    # HTTP it would sign the payload with SHA-256, which on a CPU without SHA
    # extensions is slower than either hash the store needs, on the client
    # and the server alike.
    config = Config(
        s3={"payload_signing_enabled": False, "addressing_style": "path"},
        retries={"max_attempts": 1},
        read_timeout=600,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    )


def _s3_large(
    run: Run,
    client: Any,
    bucket: str,
    *,
    probe: bool = False,
    service: Blobstore | None = None,
) -> tuple[Transfer, Transfer]:
    size = run.options.large
    puts, gets = [], []
    for i in range(run.options.runs):
        if probe:
            run.probe("md5")
        content = Content(size, run.tag("s3"))
        key = f"big-{i}"
        body = content.file()
        # Computed before the clock starts, as the native PUT's hash is:
        # boto3 would otherwise read the whole body once just for it.
        crc = content.crc32_b64
        server_cpu = service.cpu_seconds() if service is not None else None
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        client.put_object(
            Bucket=bucket, Key=key, Body=body, ContentLength=size, ChecksumCRC32=crc
        )
        put = Transfer(200, size, time.perf_counter() - t0, cpu_seconds() - cpu0)
        if service is not None and server_cpu is not None:
            put.server_cpu = service.cpu_seconds() - server_cpu
        puts.append(put)
        # Into the page cache first (a put leaves only its last bytes there).
        for _chunk in client.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(
            4 * MiB
        ):
            pass
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        response = client.get_object(Bucket=bucket, Key=key)
        got = 0
        for chunk in response["Body"].iter_chunks(4 * MiB):
            got += len(chunk)
        gets.append(Transfer(200, got, time.perf_counter() - t0, cpu_seconds() - cpu0))
        if got != size:
            raise RuntimeError(f"S3 GET returned {got} bytes, expected {size}")
    return _best(puts), _best(gets)


def s3(run: Run) -> None:
    _ensure_limits(run)
    root = run.root / "s3"
    service = run.start(Blobstore(root, Blobstore.s3_config()))
    try:
        client = _boto3_client(service.url, S3_ACCESS_KEY, S3_SECRET_KEY)
        client.create_bucket(Bucket="bench")
        put, get = _s3_large(run, client, "bench", probe=True, service=service)
        size = _mb(run.options.large)
        run.figures["s3.put"], run.figures["s3.get"] = put.mb_per_s, get.mb_per_s
        _server_cpu_row(run, "S3 (boto3)", f"server CPU per GiB, PUT {size}", put)
        run.report.compare(
            Row(
                "S3 (boto3)",
                f"PUT {size}",
                put.mb_per_s,
                "MB/s",
                client_cpu=_cpu_share(put),
            ),
            "MD5, one core",
            run.limit("md5"),
            0.8,
        )
        run.report.compare(
            Row(
                "S3 (boto3)",
                f"GET {size} (page cache)",
                get.mb_per_s,
                "MB/s",
                client_cpu=_cpu_share(get),
            ),
            "sendfile, cached file",
            run.limit("sendfile"),
        )
    finally:
        run.stop(service, remove=root)


# -- small blobs ----------------------------------------------------------------------


def _run_4k(
    endpoint: Endpoint,
    op: str,
    style: str,
    clients: int,
    seconds: float,
    keys: list[str],
) -> SmallResult:
    """4 KiB *op*s by *clients*: PUTs add the keys they wrote to *keys*,
    GETs read the latest 2,000 of them."""
    result = run_small(
        endpoint,
        op,
        style,
        size=4096,
        clients=clients,
        seconds=seconds,
        keys=keys[-2000:] if op == "get" else None,
    )
    keys += result.keys
    return result


def _small_row(label: str, op: str, clients: int, result: Any) -> Row:
    return Row(
        label,
        f"4 KiB {op}, {clients} client{'s' if clients > 1 else ''}",
        result.ops_per_s,
        "ops/s",
        p50_ms=result.percentile(0.5) * 1e3,
        p99_ms=result.percentile(0.99) * 1e3,
        client_cpu=result.cpu / result.seconds,
    )


def small(run: Run) -> None:
    """4 KiB PUTs then GETs at each concurrency, over the native API and over
    S3 (every request signed, as a client would) on one service, the two
    back to back at each step: the S3/native ratio compares figures taken
    at the same moment. The service's CPU per operation is measured around
    each run, apart from the clients sharing the machine."""
    seconds = run.options.small_seconds
    # The durable floor, before and after the runs (the best kept).
    floor = limits_mod.durable_put_floor(run.root, seconds)
    root = run.root / "small"
    service = run.start(Blobstore(root, Blobstore.s3_config()))
    try:
        _boto3_client(service.url, S3_ACCESS_KEY, S3_SECRET_KEY).create_bucket(
            Bucket="small"
        )
        s3 = replace(
            service.endpoint("/small"), s3_credentials=(S3_ACCESS_KEY, S3_SECRET_KEY)
        )
        styles = {
            "blobstore": ("small blobs, native API", service.endpoint()),
            "s3": ("small blobs, S3", s3),
        }
        keys: dict[str, list[str]] = {style: [] for style in styles}
        for style, (_, endpoint) in styles.items():
            # Warm-up, not reported: a new store's first puts also make its
            # directories (the first 1-client PUT ran at 0.5 of the next).
            warm = run_small(endpoint, "put", style, size=4096, clients=1, seconds=1)
            keys[style] += warm.keys
        rows: list[tuple[str, str, Row]] = []
        for op in ("put", "get"):
            for clients in run.options.small_concurrency:
                for style, (label, endpoint) in styles.items():
                    cpu_before = service.cpu_seconds()
                    result = _run_4k(endpoint, op, style, clients, seconds, keys[style])
                    server = (service.cpu_seconds() - cpu_before) / max(result.ops, 1)
                    row = _small_row(label, op.upper(), clients, result)
                    row.note = f"server CPU {server * 1e3:.2f} ms/op"
                    rows.append((style, f"{op}.{clients}", row))
    finally:
        run.stop(service, remove=root)
    floor = max(floor, limits_mod.durable_put_floor(run.root, seconds))
    label = "durable 4 KiB put, bare syscalls"
    run.report.add(Row("small blobs, native API", label, floor, "ops/s"))
    # Reported native first, then S3 (measured interleaved).
    for style, key, row in sorted(rows, key=lambda r: r[0] != "blobstore"):
        if style == "blobstore":
            run.figures[f"small.{key}"] = row.value
            if key == "put.1":
                run.report.compare(row, "durable put, bare syscalls", floor)
            else:
                run.report.add(row)
        else:
            run.figures[f"small.s3.{key}"] = row.value
            native = run.figures[f"small.{key}"]
            run.report.compare(row, "the native API, same clients", native)


# -- the peer: Swift ------------------------------------------------------------


def swift(run: Run) -> None:
    peer = run.swift()
    peer.create_container("bench")
    _small_versus_swift(run, peer)
    _swift_large(run, peer)
    _swift_s3(run, peer)


def _small_versus_swift(run: Run, peer: Swift) -> None:
    """4 KiB ops on Swift, each measured right after the same ops on the
    blobstore, alternating, best of each: the ratio compares two figures
    taken at the same moment (the small section's are minutes older)."""
    sides = {
        "blobstore": (run.local().endpoint(), "blobstore"),
        "swift": (peer.endpoint("bench"), "swift"),
    }
    keys: dict[str, list[str]] = {"blobstore": [], "swift": []}
    rounds = 1 if run.options.quick else 2
    for op in ("put", "get"):
        for clients in run.options.small_concurrency:
            best: dict[str, SmallResult] = {}
            for _ in range(rounds):
                for who, (endpoint, style) in sides.items():
                    result = _run_4k(
                        endpoint,
                        op,
                        style,
                        clients,
                        run.options.small_seconds,
                        keys[who],
                    )
                    if who not in best or result.ops_per_s > best[who].ops_per_s:
                        best[who] = result
            ours, theirs = best["blobstore"], best["swift"]
            row = _small_row("Swift native API (peer)", op.upper(), clients, theirs)
            row.versus = "blobstore / Swift, interleaved"
            row.ratio = ours.ops_per_s / theirs.ops_per_s
            row.target = ">= 2"
            row.met = row.ratio >= 2
            row.note = f"blobstore alongside: {ours.ops_per_s:.0f} ops/s"
            run.report.add(row)


def _peer_row(run: Run, section: str, name: str, t: Transfer, ours_key: str) -> None:
    row = Row(section, name, t.mb_per_s, "MB/s", client_cpu=_cpu_share(t))
    row.versus = "blobstore / Swift"
    ours = run.figures.get(ours_key)
    if ours is not None:
        row.ratio = ours / t.mb_per_s
    run.report.add(row)


def _swift_large(run: Run, peer: Swift) -> None:
    size = run.options.large
    ep = peer.endpoint("bench")
    puts, gets = [], []
    for i in range(run.options.runs):
        content = Content(size, run.tag("swift"))
        puts.append(put_stream(ep, "PUT", f"/big-{i}", content.chunks(), size))
        get_discard(ep, f"/big-{i}", size)  # cached first: Swift drops writes too
        gets.append(get_discard(ep, f"/big-{i}", size))
    label = _mb(size)
    section = "Swift native API (peer)"
    _peer_row(run, section, f"PUT {label}", _best(puts), "local.put")
    _peer_row(run, section, f"GET {label} (page cache)", _best(gets), "local.get")


def _swift_s3(run: Run, peer: Swift) -> None:
    client = _boto3_client(
        peer.server.s3_endpoint, peer.server.s3_access_key, peer.server.s3_secret_key
    )
    client.create_bucket(Bucket="bench-s3")
    put, get = _s3_large(run, client, "bench-s3")
    label = _mb(run.options.large)
    section = "Swift s3api (peer, boto3)"
    _peer_row(run, section, f"PUT {label}", put, "s3.put")
    _peer_row(run, section, f"GET {label} (page cache)", get, "s3.get")


# -- the read cache in front of Swift (issue 6) -----------------------------------


def _toml_table(name: str, values: dict[str, Any]) -> str:
    lines = [f"[{name}]"]
    for key, value in values.items():
        lines.append(f"{key} = {json.dumps(value)}")  # JSON scalars are TOML
    return "\n".join(lines) + "\n"


def cache(run: Run) -> None:
    """Repeated GETs of one blob stored in Swift, without and with the
    local read cache (``keep_on_put = false``: the first GET is a miss)."""
    peer = run.swift()
    size = run.options.medium
    for label, cached in (("no cache", False), ("read cache", True)):
        container = f"cache-{int(cached)}"
        root = run.root / container
        config = _toml_table("backend", peer.server.backend_config(container))
        if cached:
            config += _toml_table(
                "cache",
                {
                    "enabled": True,
                    "path": str(root / "cache"),
                    "max_size": 4 * size,
                    "keep_on_put": False,
                },
            )
        service = run.start(Blobstore(root, config))
        try:
            content = Content(size, run.tag("cache"))
            put_stream(
                service.endpoint(), "PUT", f"/{content.sha384}", content.chunks(), size
            )
            gets = [
                get_discard(service.endpoint(), f"/{content.sha384}", size)
                for _ in range(1 + run.options.runs)
            ]
        finally:
            run.stop(service, remove=root)
        first, repeat = gets[0], _best(gets[1:])
        section = "Swift backend, repeated GET"
        name = f"GET {_mb(size)}, {label}"
        if cached:
            run.report.compare(
                Row(
                    section,
                    f"{name}, first (miss)",
                    first.mb_per_s,
                    "MB/s",
                    client_cpu=_cpu_share(first),
                ),
                "no cache",
                run.figures.get("cache.off"),
            )
            run.report.compare(
                Row(
                    section,
                    f"{name}, repeated (hit)",
                    repeat.mb_per_s,
                    "MB/s",
                    client_cpu=_cpu_share(repeat),
                ),
                "no cache",
                run.figures.get("cache.off"),
            )
        else:
            run.figures["cache.off"] = repeat.mb_per_s
            run.report.add(
                Row(
                    section,
                    name,
                    repeat.mb_per_s,
                    "MB/s",
                    client_cpu=_cpu_share(repeat),
                )
            )


SCENARIOS: dict[str, Callable[[Run], None]] = {
    "limits": limits,
    "large": large,
    "erasure": erasure,
    "s3": s3,
    "small": small,
    "swift": swift,
    "cache": cache,
    "scale": scale,
}
