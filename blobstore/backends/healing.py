"""What healing reports: the optional part of the Backend contract for
backends that keep redundancy (erasure-posix with parity).

A backend whose ``can_heal`` is true implements
``heal(name=None, progress=None) -> HealReport``: with a name, that object;
without, every object it holds; and ``needs_heal()``, the names its reads
found damaged. A read cache forwards all three to its remote. The Store
and the operator commands use only what is here, never a particular
backend's modules.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from blobstore.errors import BadParams

__all__ = ["HealProgress", "HealReport", "Outcome", "no_redundancy"]


class Outcome(enum.Enum):
    """What healing one object found."""

    HEALTHY = "healthy"
    HEALED = "healed"
    DEGRADED = "degraded"  # still missing shards: their drives are offline
    UNRECOVERABLE = "unrecoverable"
    GONE = "gone"  # not there (any more)


@dataclass
class HealReport:
    """What a heal run found and did.

    ``total`` is the number of objects the run is going to scan (known before
    it starts, for progress bars); the lists name the objects an operator
    should look at.
    """

    total: int = 0
    scanned: int = 0
    healthy: int = 0
    healed: int = 0
    shards_rebuilt: int = 0
    degraded: list[str] = field(default_factory=list)
    unrecoverable: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every scanned object is now whole."""
        return not (self.degraded or self.unrecoverable or self.errors)

    def add(self, name: str, outcome: Outcome, rebuilt: int) -> None:
        """Count one object's outcome."""
        self.scanned += 1
        self.shards_rebuilt += rebuilt
        if outcome is Outcome.HEALTHY:
            self.healthy += 1
        elif outcome is Outcome.HEALED:
            self.healed += 1
        elif outcome is Outcome.DEGRADED:
            self.degraded.append(name)
        elif outcome is Outcome.UNRECOVERABLE:
            self.unrecoverable.append(name)

    def merge(self, other: HealReport) -> None:
        """Add another run's counts and findings to this one's."""
        self.scanned += other.scanned
        self.healthy += other.healthy
        self.healed += other.healed
        self.shards_rebuilt += other.shards_rebuilt
        self.degraded += other.degraded
        self.unrecoverable += other.unrecoverable
        self.errors += other.errors


#: Progress callback: the report so far and the object just scanned.
HealProgress = Callable[[HealReport, str], None]


def no_redundancy(backend: Any) -> BadParams:
    """The error for asking *backend* to heal when it keeps no redundancy."""
    kind = getattr(backend, "type_name", "") or type(backend).__name__
    return BadParams(f"backend {kind} has no redundancy to heal")
