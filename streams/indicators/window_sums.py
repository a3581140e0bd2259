"""A window's exact sum, and the keys that name windows: shared by the window state and the
store of closed windows (closed_windows.py)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from streams.indicators.enrichment import Dimensions

NANOS_PER_UNIT = 1_000_000_000
"""Values are summed as integers of this fraction of their unit (a microgram of CO2e, a
microwatt-hour): integer sums are exact, so independent of order and grouping, where float
sums are not. Rounding each value to 1e-9 of its unit is far below any reading's precision."""


def to_nanos(value: float) -> int:
    return round(value * NANOS_PER_UNIT)


@dataclass(slots=True)
class Accumulator:
    nanos: int = 0  # the sum, in billionths of the indicator's unit
    count: int = 0
    revision: int = 0

    @property
    def total(self) -> float:
        return self.nanos / NANOS_PER_UNIT  # int / int: correctly rounded

    def add(self, value: float) -> None:
        self.nanos += to_nanos(value)
        self.count += 1


SeriesKey = tuple[str, Dimensions]
WindowKey = tuple[str, Dimensions, int, int]  # indicator, dims, size, start
YtdKey = tuple[str, Dimensions, int]  # indicator, dims, year
SlotKey = tuple[str, str, int, int]  # indicator, commune, size, start (as in WindowUpdate)


@lru_cache(maxsize=65536)
def commune_of(dims: Dimensions) -> str | None:
    """The commune a series belongs to, if it has one."""
    for name, value in dims:
        if name == "commune":
            return value
    return None
