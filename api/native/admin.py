"""``/v1/admin/...``: operator actions over HTTP (admin tokens only).

``POST /v1/admin/heal?hash=H`` heals one blob and answers its report as
JSON. Without ``hash`` it heals everything the backend holds and streams
NDJSON while it works: a progress line now and then (``{"progress":
{"scanned", "total", "healed", ...}}``) and a last line with the summary
(``{"summary": {...}}``, the same document ``blobstore heal --json``
prints). The heal runs for as long as the request does -- nothing is left
running in the process when the response ends, and a client that hangs up
stops it (after the blob being healed).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import falcon

from blobstore import Store
from blobstore.jobs import heal_summary

__all__ = ["Heal"]

log = logging.getLogger(__name__)

#: At most one progress line per this many seconds (plus the first and last).
PROGRESS_INTERVAL = 1.0


def _progress_doc(report: Any) -> dict[str, Any]:
    return {
        "progress": {
            "scanned": report.scanned,
            "total": report.total,
            "healthy": report.healthy,
            "healed": report.healed,
            "degraded": len(report.degraded),
            "unrecoverable": len(report.unrecoverable),
            "errors": len(report.errors),
        }
    }


class _Stopped(Exception):
    """The client went away: stop healing (raised from the progress hook)."""


class Heal:
    """``POST /v1/admin/heal``: heal one blob (``?hash=``) or all of them."""

    access: dict[str, str] = {}  # admin only

    def __init__(self, store: Store) -> None:
        self._store = store

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        # Refuse a backend without redundancy with a plain 400 before any
        # streaming starts.
        self._store.check_healable()
        blob = req.get_param("hash")
        if blob is not None:
            started = time.monotonic()
            report = self._store.heal(blob)
            resp.media = heal_summary(self._store, report, time.monotonic() - started)
            return
        resp.content_type = "application/x-ndjson"
        resp.stream = _HealStream(self._store)


class _HealStream:
    """The NDJSON body of a whole-store heal.

    The heal runs in a thread of its own, handing lines over through a
    small queue: the response is written as the heal goes (a slow reader
    slows the heal down instead of lines piling up in memory). ``close()``
    -- called by the server when the response ends, early or not -- stops
    the heal and waits for its thread.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lines: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="blobstore-heal", daemon=True
        )
        self._started = False

    def __iter__(self) -> Iterator[bytes]:
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            line = self._lines.get()
            if line is None:
                return
            yield line

    def _put(self, doc: dict[str, Any]) -> None:
        line = (json.dumps(doc, sort_keys=True) + "\n").encode()
        while not self._stop.is_set():
            try:
                self._lines.put(line, timeout=0.5)
                return
            except queue.Full:
                continue
        raise _Stopped

    def _run(self) -> None:
        started = time.monotonic()
        last = 0.0

        def progress(report: Any, name: str) -> None:
            nonlocal last
            if self._stop.is_set():
                raise _Stopped
            now = time.monotonic()
            if report.scanned == 1 or now - last >= PROGRESS_INTERVAL:
                last = now
                self._put(_progress_doc(report))

        try:
            report = self._store.heal(progress=progress)
            summary = heal_summary(self._store, report, time.monotonic() - started)
            self._put({"summary": summary})
        except _Stopped:
            log.info("heal stopped: the client went away")
        except Exception as exc:  # the status line is gone: report in the body
            log.exception("heal failed")
            with contextlib.suppress(_Stopped):
                code = getattr(exc, "code", "internal_error")
                self._put({"error": {"code": code, "message": str(exc)}})
        finally:
            self._finish()

    def _finish(self) -> None:
        # The end marker must get through even if the queue is full and the
        # reader is slow; a reader that left has set _stop.
        while not self._stop.is_set():
            try:
                self._lines.put(None, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        self._stop.set()
        if self._started:
            self._thread.join()
