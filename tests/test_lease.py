"""The catalog lease (blobstore.lease): one holder at a time, renewed while
held, and a holder that can no longer renew stops by itself.

Over a real SQLite catalog; the multi-node behaviour through `blobstore gc`
processes is tests/e2e/test_multinode.py.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from blobstore.catalog.sqlite import SQLiteCatalog
from blobstore.errors import LeaseHeld
from blobstore.errors import Unavailable
from blobstore.lease import Lease
from blobstore.lease import LeaseLost

TTL = timedelta(seconds=0.6)


@pytest.fixture
def catalog(tmp_path):
    catalog = SQLiteCatalog(tmp_path / "catalog.db")
    yield catalog
    catalog.close()


class Partitioned:
    """A catalog that stops answering lease renewals after the first take."""

    def __init__(self, catalog: SQLiteCatalog) -> None:
        self._catalog = catalog
        self.cut = False

    def acquire_lease(self, *args):
        if self.cut:
            raise Unavailable("catalog unreachable")
        return self._catalog.acquire_lease(*args)

    def release_lease(self, *args):
        if self.cut:
            raise Unavailable("catalog unreachable")
        return self._catalog.release_lease(*args)


def test_one_holder_at_a_time_and_released_on_exit(catalog):
    with Lease(catalog, TTL), pytest.raises(LeaseHeld):
        Lease(catalog, TTL).__enter__()
    with Lease(catalog, TTL) as again:
        again.check()


def test_a_held_lease_is_renewed_past_its_ttl(catalog):
    with Lease(catalog, TTL) as lease:
        time.sleep(TTL.total_seconds() * 2.5)
        lease.check()
        with pytest.raises(LeaseHeld):
            Lease(catalog, TTL).__enter__()


def test_another_holder_taking_an_expired_lease_is_seen(catalog):
    with Lease(catalog, TTL) as lease:
        # As if this holder had been paused past its ttl: another takes it.
        catalog.release_lease(lease.name, lease.holder)
        assert catalog.acquire_lease(lease.name, "other", TTL, _now())
        deadline = time.monotonic() + TTL.total_seconds() * 2
        while not lease.lost.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(LeaseLost):
            lease.check()
    # The lost lease is not released on exit: it is the other holder's.
    assert not catalog.acquire_lease(lease.name, "third", TTL, _now())


def test_a_holder_that_cannot_renew_stops_once_its_ttl_has_run_out(catalog):
    """Partitioned from the catalog, a holder cannot know whether another has
    taken the lease; once its ttl has passed since the last renewal another
    may have, so check() fails rather than let two passes run at once."""
    partitioned = Partitioned(catalog)
    with Lease(partitioned, TTL) as lease:
        partitioned.cut = True
        lease.check()  # within the ttl of its last renewal: still ours
        time.sleep(TTL.total_seconds() * 1.2)
        with pytest.raises(LeaseLost, match="not renewed"):
            lease.check()
        partitioned.cut = False


def _now():
    from blobstore.clock import utcnow

    return utcnow()
