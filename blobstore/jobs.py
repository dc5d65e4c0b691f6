"""The operator jobs' reports and last results, as kept in the catalog.

The GC pass, a whole-store heal and a whole-store check each record a small
summary in the catalog's state (``Catalog.put_state``) when they finish, so
every node -- and ``/metrics`` on any worker -- can tell whether they are
healthy without talking to the process that ran them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING
from typing import Any

from blobstore.checker import CHECK_LAST_RUN
from blobstore.checker import QUARANTINED
from blobstore.collector import LAST_FAILURE
from blobstore.collector import LAST_RUN
from blobstore.store import HEAL_LAST_RUN

if TYPE_CHECKING:
    from blobstore.backends.healing import HealReport
    from blobstore.store import Store

__all__ = ["heal_summary", "job_states"]


def job_states(store: Store) -> dict[str, Any]:
    """``{"gc": {"last_run", "last_failure"}, "heal": ..., "check": ...,
    "quarantined": {"total", "blobs"}}``; None where nothing was recorded.

    :raises BlobStoreError: the catalog cannot be read.
    """
    get = store.catalog.get_state
    return {
        "gc": {"last_run": get(LAST_RUN), "last_failure": get(LAST_FAILURE)},
        "heal": get(HEAL_LAST_RUN),
        "check": get(CHECK_LAST_RUN),
        "quarantined": get(QUARANTINED),
    }


def heal_summary(store: Store, report: HealReport, duration: float) -> dict[str, Any]:
    """A heal report as JSON (``blobstore heal --json``, the admin endpoint),
    with ``ok``, the duration, and the blob hash of each backend object it
    names as degraded or unrecoverable (the backend's names are opaque;
    operators look blobs up by hash)."""
    doc = dataclasses.asdict(report)
    doc.update(
        ok=report.ok,
        duration=round(duration, 3),
        hashes=store.names_to_hashes(report.degraded + report.unrecoverable),
    )
    return doc
