"""Catalog leases: one holder at a time across every node, renewed while held.

Garbage collection takes the ``gc`` lease for a whole pass; other jobs that
must not run twice at once (``blobstore check --quarantine``) take one under
their own name. A lease lives in the catalog (``acquire_lease`` /
``release_lease``), so it works across processes and machines; a heartbeat
thread renews it every third of its time to live, and a holder that misses
its renewal finds :meth:`Lease.check` failing and stops before doing anything
more: when a renewal finds another holder (it was paused past its ttl), and
when no renewal has succeeded for a whole ttl (partitioned from the catalog,
it cannot know whether another node has taken the lease meanwhile). A holder
killed outright simply stops renewing; the lease is free once its ttl runs
out, and the next pass on any node takes it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from blobstore.clock import utcnow
from blobstore.errors import BlobStoreError
from blobstore.errors import LeaseHeld

if TYPE_CHECKING:
    from blobstore.catalog.base import JobCatalog

__all__ = ["LEASE_NAME", "Lease", "LeaseLost"]

log = logging.getLogger(__name__)

#: The garbage collector's lease.
LEASE_NAME = "gc"


class LeaseLost(LeaseHeld):
    """The lease was lost mid-job (another holder took it); the job stopped."""


class Lease:
    """Holds the catalog lease *name* (default: GC's) for a ``with`` block.

    :raises LeaseHeld: on entry, when another holder has it.
    """

    def __init__(
        self,
        catalog: JobCatalog,
        ttl: timedelta = timedelta(minutes=2),
        name: str = LEASE_NAME,
    ) -> None:
        self._catalog = catalog
        self._ttl = ttl
        self.name = name
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self.lost = threading.Event()
        #: time.monotonic() of the last take or renewal that succeeded
        self._renewed = 0.0
        self._thread = threading.Thread(
            target=self._beat, name=f"{name}-lease", daemon=True
        )

    def __enter__(self) -> Lease:
        if not self._catalog.acquire_lease(self.name, self.holder, self._ttl, utcnow()):
            what = f"{self.name!r} job"
            if self.name == LEASE_NAME:
                what = "garbage collection"
            raise LeaseHeld(f"another {what} is running (lease held)")
        self._renewed = time.monotonic()
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self._ttl.total_seconds() / 3):
            attempted = time.monotonic()
            try:
                ok = self._catalog.acquire_lease(
                    self.name, self.holder, self._ttl, utcnow()
                )
            except BlobStoreError as exc:
                # Keep trying: the lease is still ours until its ttl runs out.
                log.warning("%s lease renewal failed: %s", self.name, exc)
                continue
            if not ok:
                self.lost.set()
                return
            self._renewed = attempted

    def check(self) -> None:
        """:raises LeaseLost: the lease was taken by another holder, or has not
        been renewed for a whole ttl (so another may have taken it)."""
        if self.lost.is_set():
            raise LeaseLost(
                f"the {self.name} lease was lost (taken by another process); stopped"
            )
        silent = time.monotonic() - self._renewed
        if silent >= self._ttl.total_seconds():
            raise LeaseLost(
                f"the {self.name} lease was not renewed for {silent:.1f}s "
                f"(its ttl is {self._ttl.total_seconds():g}s): another process "
                "may hold it now; stopped"
            )

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.lost.is_set():
            return
        try:
            self._catalog.release_lease(self.name, self.holder)
        except BlobStoreError as exc:
            # Not released, it runs out by itself after its ttl.
            log.warning("cannot release the %s lease: %s", self.name, exc)
