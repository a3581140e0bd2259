"""A meter's recent indexes, so that an index arriving out of order counts as if in order.

Consumption is the difference between successive indexes, counted at the later one's event
time (index_deltas.py). An index that arrives after a later one of its meter (a device that
sends its live reading before its backlog; a partner's batch delivered after the device's
own readings) falls between two indexes already counted and splits their delta in two.
Keeping each meter's recent indexes lets the engine place it: it counts the part before it
at its own time, and the next index's delta is counted again from it (a recount: the old
delta taken back, the new one counted, at the next index's time). The windows then end
exactly as if the indexes had arrived in event-time order, anomalies included: a late index
below its predecessor is a reset at its time, as it would have been in order.

Kept per meter: the indexes of the ``INDEX_HISTORY_SECONDS`` before its latest, at most
``INDEX_HISTORY_MAX`` of them. An index older than those kept is out of order (dead-lettered
``index_out_of_order``), unless the meter's first index is still kept: then it is the new
first (a baseline) and the old first's delta is counted from it.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from streams.indicators.index_deltas import Consumption, IndexAnomaly, IndexState, index_delta

INDEX_HISTORY_SECONDS = 2 * 86400
"""How far behind a meter's latest index a late one still counts: the horizon of the minute
windows (window_state.CORRECTION_HORIZON_SECONDS), and beyond a device's backlog after days
offline."""

INDEX_HISTORY_MAX = 256
"""At most so many indexes kept per meter (two days and more of quarter-hours): a meter
reporting every minute keeps four hours and a quarter, and memory stays bounded."""

_HORIZON = timedelta(seconds=INDEX_HISTORY_SECONDS)


@dataclass(slots=True)
class MeterIndexes:
    """One meter's kept indexes in event-time order and, for each, the consumption counted at
    its time (the delta from the one before; None: nothing counted, a baseline or an anomaly)."""

    ats: list[datetime]
    kwh: list[float]
    counted: list[float | None]
    # The meter's first index is among those kept: an older one becomes the first.
    complete: bool = True

    @classmethod
    def starting(cls, index_kwh: float, at: datetime) -> MeterIndexes:
        return cls([at], [index_kwh], [None])

    @property
    def latest(self) -> IndexState:
        return IndexState(self.kwh[-1], self.ats[-1])

    def to_doc(self) -> list[Any]:
        """For checkpoints and the store: whether the first index is kept, then the indexes'
        times, values and the consumption counted at each, in three columns."""
        return [self.complete, [at.timestamp() for at in self.ats], self.kwh, self.counted]

    @classmethod
    def from_doc(cls, doc: list[Any]) -> MeterIndexes:
        complete, times, kwh, counted = doc
        return cls([datetime.fromtimestamp(ts, UTC) for ts in times], kwh, counted, complete)

    def forget_old(self) -> None:
        """Forget the indexes beyond the horizon or the count kept."""
        ats = self.ats
        over = len(ats) - INDEX_HISTORY_MAX
        if over > 0 or ats[0] < ats[-1] - _HORIZON:
            drop = max(over, bisect_left(ats, ats[-1] - _HORIZON))
            del ats[:drop], self.kwh[:drop], self.counted[:drop]
            self.complete = False


class Recount(NamedTuple):
    """The consumption counted at ``at`` (a later index's time) changed: ``old`` is taken back,
    ``new`` counted instead (None: nothing)."""

    at: datetime
    old: float | None
    new: float | None


class Placed(NamedTuple):
    """What an index counts at its own time (the consumption since the index before it, or the
    anomaly that prevents it: a baseline, a reset, a jump, out of order), and for an index
    that arrived after a later one, the recount at that later one's time."""

    own: Consumption | IndexAnomaly
    recount: Recount | None = None


def _counted(outcome: Consumption | IndexAnomaly) -> float | None:
    return outcome.kwh if isinstance(outcome, Consumption) else None


def place_index(history: MeterIndexes, index_kwh: float, at: datetime, max_power_kw: float) -> Placed:
    """Place a meter's new index among its kept ones (``history`` is updated unless the index
    is out of order); ``max_power_kw`` bounds a credible delta (index_deltas.index_delta)."""
    ats = history.ats
    if at > ats[-1]:  # in order: by far the most common case
        own = index_delta(IndexState(history.kwh[-1], ats[-1]), index_kwh, at, max_power_kw)
        ats.append(at)
        history.kwh.append(index_kwh)
        history.counted.append(own.kwh if isinstance(own, Consumption) else None)
        if len(ats) > INDEX_HISTORY_MAX or ats[0] < at - _HORIZON:
            history.forget_old()
        return Placed(own)
    k = bisect_left(ats, at)
    if ats[k] == at:
        return Placed(
            IndexAnomaly("out_of_order", f"an index at {at.isoformat()} is already counted for this meter")
        )
    if k == 0 and not history.complete:
        return Placed(
            IndexAnomaly(
                "out_of_order",
                f"index at {at.isoformat()} is older than the indexes kept for this meter (from "
                f"{ats[0].isoformat()}: {INDEX_HISTORY_SECONDS // 3600} h, at most {INDEX_HISTORY_MAX})",
            )
        )
    before = IndexState(history.kwh[k - 1], ats[k - 1]) if k else None
    own = index_delta(before, index_kwh, at, max_power_kw)
    after = index_delta(IndexState(index_kwh, at), history.kwh[k], ats[k], max_power_kw)
    recount = Recount(ats[k], history.counted[k], _counted(after))
    history.counted[k] = recount.new
    ats.insert(k, at)
    history.kwh.insert(k, index_kwh)
    history.counted.insert(k, _counted(own))
    history.forget_old()
    return Placed(own, recount)
