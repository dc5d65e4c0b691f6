"""How big the read cache may grow: sizes, water marks, and their checks.

Usage is the bytes of cached content (sidecars and filesystem block rounding
come on top, a fraction of a percent for blobs of a few hundred KiB and up).
Eviction starts when usage passes ``high_water × max_size`` or the
filesystem's free space drops below ``min_free``, and goes on until usage is
at most ``low_water × max_size`` and free space is at least ``min_free`` plus
the same margin in bytes: the gap between the marks is what keeps the cache
from evicting on every fill.
"""

from __future__ import annotations

from dataclasses import dataclass

from blobstore import units
from blobstore.errors import BadParams

__all__ = ["DEFAULT_MIN_FREE", "Limits", "parse_size"]

#: Keep at least this much of the cache's filesystem free by default.
DEFAULT_MIN_FREE = 1 << 30


def parse_size(value: object, key: str) -> int:
    """A byte count (:func:`blobstore.units.parse_size`'s grammar).

    :raises BadParams: naming *key*.
    """
    try:
        return units.parse_size(value)
    except ValueError as exc:
        raise BadParams(f"{key}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Limits:
    """The cache's size policy (see the module docs); checked on creation.

    :param max_object_size: objects bigger than this are served from the
        remote without being cached (default: a quarter of ``max_size``, so
        one huge blob cannot flush everything else).
    """

    max_size: int
    high_water: float = 0.90
    low_water: float = 0.80
    min_free: int = DEFAULT_MIN_FREE
    max_object_size: int = -1

    def __post_init__(self) -> None:
        if isinstance(self.max_size, bool) or not isinstance(self.max_size, int):
            raise BadParams(f"cache.max_size: expected bytes, got {self.max_size!r}")
        if self.max_size <= 0:
            raise BadParams(f"cache.max_size must be positive, got {self.max_size}")
        for key in ("high_water", "low_water"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BadParams(f"cache.{key}: expected a fraction, got {value!r}")
            if not 0 < value <= 1:
                raise BadParams(f"cache.{key} must be in (0, 1], got {value}")
        if self.low_water >= self.high_water:
            raise BadParams(
                f"cache.low_water ({self.low_water}) must be below "
                f"cache.high_water ({self.high_water})"
            )
        if isinstance(self.min_free, bool) or not isinstance(self.min_free, int):
            raise BadParams(f"cache.min_free: expected bytes, got {self.min_free!r}")
        if self.min_free < 0:
            raise BadParams(f"cache.min_free must not be negative, got {self.min_free}")
        if self.max_object_size == -1:
            object.__setattr__(self, "max_object_size", self.max_size // 4)
        elif not isinstance(self.max_object_size, int) or self.max_object_size < 0:
            raise BadParams(
                f"cache.max_object_size: expected bytes, got {self.max_object_size!r}"
            )

    @property
    def high_bytes(self) -> int:
        return int(self.max_size * self.high_water)

    @property
    def low_bytes(self) -> int:
        return int(self.max_size * self.low_water)

    def must_evict(self, usage: int, free: int) -> bool:
        return usage > self.high_bytes or free < self.min_free

    def evicted_enough(self, usage: int, free: int) -> bool:
        margin = self.high_bytes - self.low_bytes
        return usage <= self.low_bytes and free >= self.min_free + margin

    def admits(self, size: int, usage: int, free: int) -> bool:
        """Whether a new copy of *size* bytes may be made now."""
        return (
            size <= self.max_object_size
            and usage + size <= self.max_size
            and free - size >= self.min_free
        )
