"""What the operator commands (``gc``, ``heal``, ``check``, ``stats``,
``uploads``) share: log format, progress bars, opening the store, output.

Conventions, the same for every operator command:

* The result goes to stdout: a short human summary, or with ``--json``
  exactly one JSON object (for monitoring and log shipping).
* Logs go to stderr: text lines on a terminal, JSON lines otherwise (cron,
  systemd, Kubernetes collect them), or as ``--log-format`` says. Text
  lines look like ``blobstore serve``'s.
* A progress bar (on stderr) only when stderr is a terminal.
* Exit codes: 0 done and clean, 1 failed or problems found, 2 bad usage or
  configuration, 75 (EX_TEMPFAIL) another run holds the job's lease.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import click

from blobstore import Store
from blobstore.config import Settings
from blobstore_api.commands import EXIT_CONFIG
from blobstore_api.commands import fail
from blobstore_api.commands import failing_as

__all__ = [
    "ProgressBar",
    "command_logging",
    "emit",
    "human_bytes",
    "human_duration",
    "install_default_logging",
    "log_format_option",
    "open_store",
    "output_options",
    "s3_multipart_expiry",
    "table",
]

TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
TEXT_DATEFMT = "%Y-%m-%d %H:%M:%S %z"


def _handler(log_format: str) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{process}{message}",
                style="{",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp="time",
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT, TEXT_DATEFMT))
    handler._blobstore = True  # type: ignore[attr-defined]  # ours to replace
    return handler


def install_default_logging() -> None:
    """Text logs on stderr at INFO, unless logging is already set up (the
    ``blobstore`` group calls this for every command)."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(_handler("text"))
        root.setLevel(logging.INFO)


@contextlib.contextmanager
def command_logging(log_format: str) -> Iterator[None]:
    """Logs on stderr as text or JSON lines while the command runs
    (``auto``: JSON unless stderr is a terminal), instead of the default
    handler; put back as they were afterwards."""
    if log_format == "auto":
        log_format = "text" if sys.stderr.isatty() else "json"
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_blobstore", False)]
    level = root.level
    for handler in ours:
        root.removeHandler(handler)
    handler = _handler(log_format)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for old in ours:
            root.addHandler(old)


def log_format_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--log-format",
        type=click.Choice(["auto", "text", "json"]),
        default="auto",
        envvar="BLOBSTORE_LOG_FORMAT",
        show_default=True,
        help="Logs on stderr: text, JSON lines, or auto (JSON unless a terminal).",
    )(command)


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` and ``--log-format``."""
    command = log_format_option(command)
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print the result as one JSON object.",
    )(command)


def open_store(settings: Settings) -> Store:
    """The configured Store, or exit: 2 for a configuration the backend or
    catalog refuses, 1 for storage that cannot be reached."""
    from blobstore.config import build_store

    with failing_as("cannot open the store"):
        return build_store(settings)


def s3_multipart_expiry(settings: Settings) -> timedelta:
    """``[s3] multipart_expiry`` (default 7 days), parsed as the façade does.

    Read whether or not the façade is enabled: S3 uploads already in the
    catalog keep their parts alive until they are removed, and with the
    façade off nobody can complete them.
    """
    from blobstore.s3.objects import DEFAULT_MULTIPART_EXPIRY

    raw = settings.s3.get("multipart_expiry")
    if raw is None:
        return DEFAULT_MULTIPART_EXPIRY
    from blobstore_api.s3.context import parse_duration

    try:
        return parse_duration(raw)
    except ValueError as exc:
        fail(f"config error: [s3] multipart_expiry: {exc}", EXIT_CONFIG)


def emit(doc: dict[str, Any]) -> None:
    """One JSON object on one line of stdout."""
    click.echo(json.dumps(doc, sort_keys=True, default=str))


class ProgressBar:
    """tqdm bars on stderr, one per phase, shown only on a terminal.

    ``set(phase, n, total)`` moves the current phase's bar to *n* (opening a
    new bar when the phase changes). Log lines printed meanwhile go above the
    bar instead of through it.
    """

    def __init__(self, enabled: bool | None = None, unit: str = "") -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        #: "B": counts are bytes, shown as KiB, MiB, ... and per second.
        self._units = (
            {"unit": "B", "unit_scale": True, "unit_divisor": 1024}
            if unit == "B"
            else {"unit": unit}
        )
        self._bar: Any = None
        self._phase: str | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._stack.enter_context(logging_redirect_tqdm())
        return self

    def set(self, phase: str, n: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        if phase != self._phase:
            self._close_bar()
            from tqdm import tqdm

            self._bar = tqdm(desc=phase, total=total, file=sys.stderr, **self._units)
            self._phase = phase
        if total is not None and self._bar.total != total:
            self._bar.total = total
        self._bar.update(n - self._bar.n)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __exit__(self, *exc: object) -> None:
        self._close_bar()
        self._stack.close()


def human_bytes(n: int) -> str:
    """``1.5 GiB`` (exact bytes below 1 KiB)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def table(rows: Iterator[tuple[str, object]] | list[tuple[str, object]]) -> None:
    """Print ``label  value`` lines with the values aligned."""
    rows = list(rows)
    width = max((len(label) for label, _ in rows), default=0)
    for label, value in rows:
        click.echo(f"  {label.ljust(width)}  {value}")
