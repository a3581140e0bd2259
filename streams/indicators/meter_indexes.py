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

A recount takes a delta back from the series the late index names (its commune, sector and
carrier: its *terms*), so it is exact only if the delta was counted under the same terms.
Readings of one meter may disagree (a partner's batch labels it otherwise than the device;
the registry moved it; two simulated fleets gave one id two sectors): a take-back in the
wrong series subtracts what that series never had, and a CI run saw an hour lose 4.8 kWh so.
Each meter therefore keeps the terms its deltas are counted under and since when; a late
index that would split a delta counted under other terms is dead-lettered
``index_terms_changed`` instead of being placed.
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
    # The terms (``meter_terms``) the deltas counted from ``terms_since`` on are counted under;
    # None: unknown (indexes kept before checkpoint format 8), taken from the next index.
    terms: str | None = None
    terms_since: datetime | None = None

    @classmethod
    def starting(cls, index_kwh: float, at: datetime, terms: str) -> MeterIndexes:
        return cls([at], [index_kwh], [None], terms=terms, terms_since=at)

    @property
    def latest(self) -> IndexState:
        return IndexState(self.kwh[-1], self.ats[-1])

    def to_doc(self) -> list[Any]:
        """For checkpoints and the store: whether the first index is kept, then the indexes'
        times, values and the consumption counted at each, in three columns."""
        since = None if self.terms_since is None else self.terms_since.timestamp()
        return [self.complete, [at.timestamp() for at in self.ats], self.kwh, self.counted, self.terms, since]

    @classmethod
    def from_doc(cls, doc: list[Any]) -> MeterIndexes:
        complete, times, kwh, counted, *terms = doc  # no terms before checkpoint format 8
        terms_of, since = terms or (None, None)
        return cls(
            [datetime.fromtimestamp(ts, UTC) for ts in times], kwh, counted, complete, terms_of,
            None if since is None else datetime.fromtimestamp(since, UTC),
        )  # fmt: skip

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


def meter_terms(commune: str, sector: str, carrier: str) -> str:
    """The series a meter's deltas are counted in, as one comparable value."""
    return f"{commune}|{sector}|{carrier}"


def place_index(
    history: MeterIndexes, index_kwh: float, at: datetime, max_power_kw: float, terms: str
) -> Placed:
    """Place a meter's new index, read under ``terms`` (``meter_terms``), among its kept ones
    (``history`` is updated unless the index is refused); ``max_power_kw`` bounds a credible
    delta (index_deltas.index_delta)."""
    ats = history.ats
    if history.terms is None:  # kept before checkpoint format 8: their terms are not known
        # In order, only its own delta is known to count under its terms: a late index splitting
        # an older one is refused. Late, it is trusted with the kept ones (as format 7 did), for
        # at most the two days they are kept.
        history.terms, history.terms_since = terms, at if at > ats[-1] else ats[0]
    if at > ats[-1]:  # in order: by far the most common case
        if terms != history.terms:  # its delta, and those after, count under its terms
            history.terms, history.terms_since = terms, at
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
    since = history.terms_since
    if terms != history.terms or (since is not None and ats[k] < since):
        return Placed(
            IndexAnomaly(
                "terms_changed",
                f"index at {at.isoformat()} falls among this meter's indexes kept under other terms "
                f"(commune|sector|carrier {history.terms!r} since {since.isoformat() if since else '?'}; "
                f"the index after it at {ats[k].isoformat()}) than its own ({terms!r}): placed, it would "
                "move consumption between series",
            )
        )
    if since is not None and at < since:  # the next index's delta was counted under them: its own too
        history.terms_since = at
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
