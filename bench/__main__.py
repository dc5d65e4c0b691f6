"""``python -m bench [--quick] [--json FILE] [--only SCENARIO ...]``

Runs the scenarios in order (limits first: every other figure is compared
with them), prints one line per figure as it is measured and the whole table
at the end, and writes the rows and the machine's description as JSON.
Every service is started here on 127.0.0.1 under a temporary directory and
stopped by PID at the end, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench.report import Report
from bench.report import machine_facts
from bench.scenarios import SCENARIOS
from bench.scenarios import Options
from bench.scenarios import Run


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: small sizes, seconds"
    )
    parser.add_argument(
        "--json", type=Path, default=Path("bench-results.json"), help="where to write"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(SCENARIOS),
        metavar="SCENARIO",
        help=f"run only these ({', '.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where to make the temporary directory (default: the system's; "
        "the disk under it is the one measured)",
    )
    return parser.parse_args(argv)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the finally that stops services


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _terminate)
    names = args.only or list(SCENARIOS)
    root = Path(tempfile.mkdtemp(prefix="blobstore-bench-", dir=args.dir))
    report = Report()
    run = Run(Options(quick=args.quick), report, root)
    report.facts = machine_facts(root)
    report.facts["command"] = " ".join(["python -m bench", *(argv or sys.argv[1:])])
    started = time.perf_counter()
    status = 0
    try:
        for name in names:
            print(f"== {name}", flush=True)
            t0 = time.perf_counter()
            SCENARIOS[name](run)
            report.facts.setdefault("scenario_seconds", {})[name] = round(
                time.perf_counter() - t0, 1
            )
    except KeyboardInterrupt:
        print("interrupted: stopping the services", file=sys.stderr)
        status = 130
    finally:
        for service in reversed(run.services):
            service.stop()
        shutil.rmtree(root, ignore_errors=True)
    report.facts["seconds"] = round(time.perf_counter() - started, 1)
    report.facts["load_average_end"] = os.getloadavg()
    print()
    print(report.table())
    print(
        f"\nload average at start {report.facts['load_average']}, "
        f"at end {report.facts['load_average_end']}"
    )
    report.save(args.json)
    print(f"results written to {args.json}")
    return status


if __name__ == "__main__":
    sys.exit(main())
