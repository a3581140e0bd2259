"""Cumulative meter indexes turned into consumption deltas, with resets and rollovers caught.

A meter that reports an index (a counter) says how much it has measured since it was
installed; consumption is the difference between two successive indexes. A counter that
goes down was either reset (replaced, reprogrammed) or rolled over (it wrapped at its
number of digits). Neither may become a negative consumption, nor a huge one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class IndexState:
    """The last index seen for one meter, in kWh."""

    index_kwh: float
    at: datetime


@dataclass(frozen=True)
class Consumption:
    kwh: float
    start: datetime
    end: datetime
    rolled_over: bool = False


@dataclass(frozen=True)
class IndexAnomaly:
    """Why no consumption could be derived; the new index becomes the baseline."""

    kind: str  # "reset", "jump", "out_of_order", "terms_changed", "first"
    message: str


ROLLOVER_MARGIN = 0.9
"""A fall is a rollover only if the previous index was in the top 10 % of its counter range."""


SMALLEST_REGISTER_KWH = 10_000.0
"""Where the smallest real register wraps (four digits of kWh). Without this floor, a meter
reset to 0 that reached 9.6 kWh and was reset again read as a 10 kWh counter that wrapped,
and 5.1 kWh were counted instead of a reset reported (found by
tests/e2e/test_fault_reconciliation.py)."""


def counter_capacity(index: float) -> float:
    """Where a decimal counter holding ``index`` wraps: the power of ten above it, at least
    ``SMALLEST_REGISTER_KWH``."""
    power = 10.0 ** math.floor(math.log10(index) + 1) if index >= 1 else 10.0
    return max(power, SMALLEST_REGISTER_KWH)


def index_delta(
    previous: IndexState | None, index_kwh: float, at: datetime, max_power_kw: float
) -> Consumption | IndexAnomaly:
    """The consumption between ``previous`` and a new index, or the anomaly that prevents it.

    ``max_power_kw`` bounds a credible delta: a meter cannot deliver more than that power
    on average over the elapsed time.
    """
    if previous is None:
        return IndexAnomaly("first", "first index of this meter: baseline recorded")
    hours = (at - previous.at).total_seconds() / 3600
    if hours <= 0:
        return IndexAnomaly(
            "out_of_order",
            f"index at {at.isoformat()} is not after the previous one ({previous.at.isoformat()})",
        )
    limit_kwh = max_power_kw * hours
    if index_kwh >= previous.index_kwh:
        delta = index_kwh - previous.index_kwh
        if delta > limit_kwh:
            return IndexAnomaly(
                "jump",
                f"index rose by {delta:g} kWh in {hours:g} h, beyond {max_power_kw:g} kW: "
                "misread or meter swap",
            )
        return Consumption(delta, previous.at, at)
    capacity = counter_capacity(previous.index_kwh)
    wrapped = capacity - previous.index_kwh + index_kwh
    if previous.index_kwh >= ROLLOVER_MARGIN * capacity and wrapped <= limit_kwh:
        return Consumption(wrapped, previous.at, at, rolled_over=True)
    return IndexAnomaly(
        "reset",
        f"index fell from {previous.index_kwh:g} to {index_kwh:g} kWh: counter reset or meter replaced",
    )
