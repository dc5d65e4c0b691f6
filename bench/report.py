"""Results: one :class:`Row` per measured figure, a text table, a JSON file.

A row carries its figure, what it is compared with (a limit or a peer,
measured in the same run), the ratio, and the target ratio when the issue
sets one, so the table alone says whether each target is met.
"""

from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Report", "Row"]


@dataclass
class Row:
    section: str
    name: str
    value: float
    unit: str  # "MB/s", "ops/s", "MiB"
    p50_ms: float | None = None
    p99_ms: float | None = None
    versus: str | None = None  # what the ratio compares with
    ratio: float | None = None
    target: str | None = None  # e.g. ">= 0.8"
    met: bool | None = None
    client_cpu: float | None = None  # client CPU seconds per wall second
    note: str = ""


def _fmt(value: float | None, spec: str = ".0f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


class Report:
    """Collects rows and machine facts; prints and saves them."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.facts: dict[str, Any] = {}

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(_line(row), flush=True)
        return row

    def compare(
        self,
        row: Row,
        versus: str,
        reference: float | None,
        target: float | None = None,
        *,
        lower_is_better: bool = False,
    ) -> Row:
        """Fill in the ratio of *row* to *reference* and the target check
        (with *lower_is_better*, *target* is an absolute ceiling and the
        ratio is the value's share of it)."""
        row.versus = versus
        if lower_is_better and target is not None:
            row.ratio = row.value / target
            row.target = f"< {target:g}"
            row.met = row.value < target
        elif reference:
            row.ratio = row.value / reference
            if target is not None:
                row.target = f">= {target:g}"
                row.met = row.ratio >= target
        return self.add(row)

    def table(self) -> str:
        header = (
            f"{'scenario':<44} {'value':>10} {'unit':<6} {'p50 ms':>7} {'p99 ms':>7}"
            f"  {'vs':<34} {'ratio':>6} {'target':>7} {'met':>4} {'cli cpu':>7}"
        )
        lines = [header, "-" * len(header)]
        section = None
        for row in self.rows:
            if row.section != section:
                section = row.section
                lines.append(f"[{section}]")
            lines.append(_line(row))
        return "\n".join(lines)

    def save(self, path: Path) -> None:
        doc = {
            "machine": self.facts,
            "rows": [asdict(r) for r in self.rows],
        }
        path.write_text(json.dumps(doc, indent=2) + "\n")


def _line(row: Row) -> str:
    met = {True: "yes", False: "NO", None: ""}[row.met]
    versus = (row.versus or "")[:34]
    value = _fmt(row.value, ",.1f" if row.value < 100 else ",.0f")
    cpu = "-" if row.client_cpu is None else f"{row.client_cpu * 100:.0f}%"
    return (
        f"{row.name[:44]:<44} {value:>10} {row.unit:<6}"
        f" {_fmt(row.p50_ms, '.2f'):>7} {_fmt(row.p99_ms, '.2f'):>7}"
        f"  {versus:<34} {_fmt(row.ratio, '.2f'):>6} {row.target or '':>7}"
        f" {met:>4} {cpu:>7}" + (f"  ({row.note})" if row.note else "")
    )


def machine_facts(data_dir: Path) -> dict[str, Any]:
    """Cores, memory, disk, Python: what BENCHMARKS.md describes."""
    import os

    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                facts["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    facts["data_filesystem"] = _filesystem(data_dir)
    return facts


def _filesystem(path: Path) -> str:
    """The mount (device and type) holding *path*."""
    best = ("", "?", "?")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, kind = line.split()[:3]
            if str(path.resolve()).startswith(mount) and len(mount) >= len(best[0]):
                best = (mount, device, kind)
    except OSError:
        pass
    return f"{best[1]} ({best[2]}) mounted at {best[0]}"
