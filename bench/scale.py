"""How the cost grows with what is stored (``python -m bench --only scale``).

For each catalog size (10^5 and 10^6 blobs; 10^3 and 10^4 with ``--quick``)
and an empty store as the baseline measured in the same run:

* the SQLite catalog's size on disk;
* 4 KiB PUT and GET over the native API (one client; p50/p99), as a ratio of
  the empty store's: how much a big catalog slows each request. All the
  stores run at once and their runs alternate, best of three rounds each,
  so that the machine's drift falls on all of them alike;
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
import os
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from bench.clients import SmallResult
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
    # Written with synchronous=OFF, the catalog is still dirty page cache:
    # flushed while the PUTs run, its writeback (581 MiB at 10^6) slowed
    # their fsyncs, and the slowdown was blamed on the catalog's size.
    os.sync()


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


@dataclass
class _Stored:
    """One service over a catalog of *count* blobs, and what was measured."""

    count: int
    root: Path
    service: Blobstore
    fill_seconds: float
    puts: list[SmallResult] = field(default_factory=list)
    gets: list[SmallResult] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    @property
    def db_path(self) -> Path:
        return self.root / "catalog.db"


def _prepare(run: Run, count: int) -> _Stored:
    root = run.root / f"scale-{count}"
    root.mkdir(parents=True, exist_ok=True)
    db_path = root / "catalog.db"
    started = time.monotonic()
    if count:
        populate(db_path, count)
    filled = time.monotonic() - started
    config = f'[catalog]\npath = "{db_path}"\n[backend]\npath = "{root / "blobs"}"\n'
    service = run.start(Blobstore(root / "service", config))
    return _Stored(count, root, service, filled)


def _best(results: list[SmallResult]) -> SmallResult:
    return max(results, key=lambda r: r.ops_per_s)


def _spread(results: list[SmallResult]) -> str:
    ops = sorted(r.ops_per_s for r in results)
    return " / ".join(f"{x:,.0f}" for x in (ops[0], ops[len(ops) // 2], ops[-1]))


def _measure(run: Run, counts: tuple[int, ...]) -> dict[int, dict[str, Any]]:
    """Every store up at once, their PUT and GET runs interleaved round by
    round (best of the rounds kept): on these VMs the same code's 4 KiB PUT
    rate drifts by a third from one minute to the next, which measuring
    the stores one after another mistook for the catalog's growth."""
    stores: list[_Stored] = []
    try:
        for count in counts:
            stores.append(_prepare(run, count))
        seconds = run.options.small_seconds
        for _ in range(run.options.runs):
            for st in stores:
                put = run_small(
                    st.service.endpoint(),
                    "put",
                    "blobstore",
                    size=4096,
                    clients=1,
                    seconds=seconds,
                )
                st.puts.append(put)
                st.keys += put.keys
        for _ in range(run.options.runs):
            for st in stores:
                st.gets.append(
                    run_small(
                        st.service.endpoint(),
                        "get",
                        "blobstore",
                        size=4096,
                        clients=1,
                        seconds=seconds,
                        keys=st.keys[-2000:],
                    )
                )
        out = {}
        for st in stores:
            gc_seconds, gc_rss = gc_pass(st.service.server)
            put, get = _best(st.puts), _best(st.gets)
            out[st.count] = {
                "count": st.count,
                "fill_seconds": st.fill_seconds,
                "catalog_bytes": _catalog_bytes(st.db_path),
                "put_ops": put.ops_per_s,
                "put_p50": put.percentile(0.5) * 1e3,
                "put_p99": put.percentile(0.99) * 1e3,
                "put_spread": _spread(st.puts),
                "get_ops": get.ops_per_s,
                "get_p50": get.percentile(0.5) * 1e3,
                "get_p99": get.percentile(0.99) * 1e3,
                "get_spread": _spread(st.gets),
                "gc_seconds": gc_seconds,
                "gc_rss": gc_rss,
            }
        return out
    finally:
        for st in stores:
            run.stop(st.service, remove=st.root)


def _label(count: int) -> str:
    return "empty store" if count == 0 else f"{count:,} blobs"


def scale(run: Run) -> None:
    counts = (0, 1_000, 10_000) if run.options.quick else (0, 100_000, 1_000_000)
    measured = _measure(run, counts)
    base = measured[0]
    report = run.report
    for count in counts:
        m = measured[count]
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
                note=f"min / median / max {m[f'{op}_spread']}",
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
