"""How the cost grows with what is stored (``python -m bench --only scale``).

For each catalog size (10^5 and 10^6 blobs; 10^3 and 10^4 with ``--quick``)
and an empty store as the baseline measured in the same run:

* the SQLite catalog's size on disk;
* 4 KiB PUT and GET over the native API (one client; p50/p99), as a ratio of
  the empty store's: how much a big catalog slows each request;
* one GC pass (``blobstore gc --dry-run``: the whole mark of every ref and
  the whole sweep scan, nothing deleted) run as its own process: its time
  and its peak RSS, which is what must stay flat as the catalog grows.

The stored blobs are catalog records, nine in ten of them named by a ref,
written straight into the catalog's tables in one transaction: putting 10^6
blobs through the service would take the run's whole budget and measure
nothing more. Their bytes are absent (GC's dry run never reads them); the
4 KiB blobs the PUT/GET clients use are real.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.clients import run_small
from bench.report import Row
from bench.service import Blobstore
from blobstore.catalog.sqlite import SQLiteCatalog

if TYPE_CHECKING:
    from bench.scenarios import Run
    from tests.e2e.server import ServerProcess

__all__ = ["scale"]

MiB = 1 << 20
SECTION = "scale (SQLite catalog)"
#: One blob in this many is garbage (no ref names it).
GARBAGE_EVERY = 10


def populate(db_path: Path, count: int) -> None:
    """*count* blob records (old enough for GC) and refs to nine in ten.

    The catalog creates its schema and triggers (the running totals) first;
    the rows then go in with one executemany per table, in one transaction.
    """
    SQLiteCatalog(db_path).close()
    old = int((time.time() - 7 * 86400) * 1000)
    db = sqlite3.connect(db_path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous = OFF")
        db.execute("BEGIN")
        hashes = (hashlib.sha384(b"scale %d" % i).hexdigest() for i in range(count))
        db.executemany(
            "INSERT INTO blobs (hash, name, size, put_time, part_index) "
            "VALUES (?, ?, 4096, ?, NULL)",
            ((h, f"scale-{h[:40]}", old) for h in hashes),
        )
        db.executemany(
            "INSERT INTO refs (name, hash, mtime) VALUES (?, ?, ?)",
            (
                (f"scale/{i}", hashlib.sha384(b"scale %d" % i).hexdigest(), old)
                for i in range(count)
                if i % GARBAGE_EVERY
            ),
        )
        db.execute("COMMIT")
    finally:
        db.close()


def _catalog_bytes(db_path: Path) -> int:
    return sum(
        p.stat().st_size for p in db_path.parent.glob(db_path.name + "*") if p.is_file()
    )


def gc_pass(server: ServerProcess) -> tuple[float, int]:
    """One ``blobstore gc --dry-run`` process: (seconds, peak RSS bytes).

    The peak is the process's ``VmHWM``, polled while it runs (it only
    grows): ``ru_maxrss`` would count the parent's memory the child shared
    between fork and exec, the benchmark's own, not the pass's.
    """
    command = server.cli("gc", "--dry-run", "--grace", "0", "--json")
    env = server.cli_env()
    started = time.monotonic()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    peak = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            break  # exited between poll() and the read
        time.sleep(0.02)
    _, err = process.communicate()
    seconds = time.monotonic() - started
    if process.returncode != 0:
        raise RuntimeError(f"gc failed ({process.returncode}): {err[-500:]!r}")
    return seconds, peak


def _measure(run: Run, count: int) -> dict[str, float]:
    root = run.root / f"scale-{count}"
    root.mkdir(parents=True, exist_ok=True)
    db_path = root / "catalog.db"
    started = time.monotonic()
    if count:
        populate(db_path, count)
    filled = time.monotonic() - started
    config = f'[catalog]\npath = "{db_path}"\n[backend]\npath = "{root / "blobs"}"\n'
    service = run.start(Blobstore(root / "service", config))
    try:
        endpoint = service.endpoint()
        seconds = run.options.small_seconds
        put = run_small(
            endpoint, "put", "blobstore", size=4096, clients=1, seconds=seconds
        )
        get = run_small(
            endpoint,
            "get",
            "blobstore",
            size=4096,
            clients=1,
            seconds=seconds,
            keys=put.keys[-2000:],
        )
        gc_seconds, gc_rss = gc_pass(service.server)
        catalog_bytes = _catalog_bytes(db_path)
    finally:
        run.stop(service, remove=root)
    return {
        "count": count,
        "fill_seconds": filled,
        "catalog_bytes": catalog_bytes,
        "put_ops": put.ops_per_s,
        "put_p50": put.percentile(0.5) * 1e3,
        "put_p99": put.percentile(0.99) * 1e3,
        "get_ops": get.ops_per_s,
        "get_p50": get.percentile(0.5) * 1e3,
        "get_p99": get.percentile(0.99) * 1e3,
        "gc_seconds": gc_seconds,
        "gc_rss": gc_rss,
    }


def _label(count: int) -> str:
    return "empty store" if count == 0 else f"{count:,} blobs"


def scale(run: Run) -> None:
    counts = (0, 1_000, 10_000) if run.options.quick else (0, 100_000, 1_000_000)
    base = _measure(run, 0)
    report = run.report
    for count in counts:
        m = base if count == 0 else _measure(run, count)
        label = _label(count)
        if count:
            report.add(
                Row(
                    SECTION,
                    f"catalog size, {label}",
                    m["catalog_bytes"] / MiB,
                    "MiB",
                    note=f"filled in {m['fill_seconds']:.1f} s",
                )
            )
        for op in ("put", "get"):
            row = Row(
                SECTION,
                f"4 KiB {op.upper()}, {label}",
                m[f"{op}_ops"],
                "ops/s",
                p50_ms=m[f"{op}_p50"],
                p99_ms=m[f"{op}_p99"],
            )
            if count:
                report.compare(row, "the empty store, same run", base[f"{op}_ops"])
            else:
                report.add(row)
        row = Row(SECTION, f"GC pass (dry run), {label}", m["gc_seconds"], "s")
        if count:
            report.compare(row, "the empty store's pass", base["gc_seconds"])
        else:
            report.add(row)
        row = Row(SECTION, f"GC peak RSS, {label}", m["gc_rss"] / MiB, "MiB")
        if count:
            report.compare(row, "the empty store's pass", base["gc_rss"] / MiB)
        else:
            report.add(row)
        run.figures[f"scale.{count}.gc_rss"] = m["gc_rss"]
        run.figures[f"scale.{count}.gc_seconds"] = m["gc_seconds"]
