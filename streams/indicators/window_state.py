"""Deterministic window state of one partition: sums per series and window, on event time.

Pure and replayable: the same contributions in the same order give the same state and the
same updates, which is what makes results exact after a crash (state is restored from a
checkpoint and the partition replayed from the checkpoint's offset; see docs/indicators.md).
Sums are exact: each value is counted in billionths of its unit, as an integer
(``NANOS_PER_UNIT``), so a window's total does not depend on the order of its readings nor
on how they were grouped between flushes, which lets on-time readings wait, summed per
smallest window, until the flush adds them to every window size at once.

- Windows are tumbling, per size; a window closes when the partition's watermark (highest
  event time seen) passes its end plus the grace period, and its value is emitted final.
- An event arriving for a window still open updates it (and the window is re-emitted).
- An event whose sub-day windows have closed is *late*: it still counts, through the
  corrections path, in its day window (re-emitted with a higher revision if the day had
  closed) and in the year-to-date total. Nothing is dropped.
- A repeated event is counted once: ids are unique per producer (docs/contracts.md), so the
  last ``max_seen_ids`` (producer, event id) pairs are remembered; two producers may use the
  same id.
- Closed days are kept for corrections as long as validation accepts readings for them
  (``CLOSED_DAYS_KEPT_SECONDS``), then forgotten.
- A partition that receives nothing may have its watermark moved forward without a reading
  (``advance_watermark``, to a point ``idle_watermark`` allows, decided by engine.py): its
  windows then close as if time had passed, and a reading that comes after for one of them is
  late, as above.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple

from streams.indicators.enrichment import Contribution, Dimensions
from streams.indicators.window_assignment import epoch_seconds

DAY = 86400
CLOSED_DAYS_KEPT_SECONDS = 402 * DAY
"""Closed days are kept this long behind the watermark for the corrections path: validation
refuses events more than ``max_past_days`` (400) old or ``max_future_seconds`` ahead
(reference/data/plausibility.toml), so no accepted reading can reach an older day; two days
of margin for clocks and validation workers. A reading for a day older than that (the
bounds were widened) counts in its year-to-date only: its day is no longer known whole."""


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

    def merge(self, nanos: int, count: int) -> None:
        self.nanos += nanos
        self.count += count


SeriesKey = tuple[str, Dimensions]
WindowKey = tuple[str, Dimensions, int, int]  # indicator, dims, size, start
YtdKey = tuple[str, Dimensions, int]  # indicator, dims, year
SlotKey = tuple[str, str, int, int]  # indicator, commune, size, start (as in WindowUpdate)


class WindowUpdate(NamedTuple):
    """A window's value to publish; ``size`` 0 means year-to-date (start = 1 January).

    A tuple: thousands per flush, built at a third of a frozen dataclass's cost."""

    indicator: str
    dimensions: Dimensions
    size: int
    start: int
    total: float
    count: int  # type: ignore[assignment]  # the field hides tuple.count, which nothing uses
    final: bool
    revision: int


@dataclass
class WindowState:
    sizes: tuple[int, ...]
    grace_seconds: int
    max_seen_ids: int = 20_000
    # How long a closed day is kept for the corrections path (see CLOSED_DAYS_KEPT_SECONDS).
    closed_days_kept_seconds: int = CLOSED_DAYS_KEPT_SECONDS
    open: dict[WindowKey, Accumulator] = field(default_factory=dict)
    closed_days: dict[WindowKey, Accumulator] = field(default_factory=dict)
    ytd: dict[YtdKey, Accumulator] = field(default_factory=dict)
    # (producer, event id) -> its day start, in arrival order (the oldest evicted first, in O(1)).
    seen: OrderedDict[tuple[str, str], int] = field(default_factory=OrderedDict)
    watermark: int = 0
    touched: set[WindowKey] = field(default_factory=set)
    touched_ytd: set[YtdKey] = field(default_factory=set)
    # On-time readings since the last flush, summed per smallest window: (indicator, dims,
    # start) -> [nanos, count]. The flush adds each to every window size (``settle``).
    pending: dict[tuple[str, Dimensions, int], list[int]] = field(default_factory=dict)
    counted: int = 0
    duplicates: int = 0
    late: int = 0
    # Indexes over the dicts above, in their insertion order, so that a flush and the
    # derived indicators look at the windows they need instead of scanning the state:
    # open windows per (size, start), closed days per start, and every window per
    # (indicator, commune, size, start), ``size`` 0 for year-to-date (start = 1 January).
    open_by_window: dict[tuple[int, int], list[WindowKey]] = field(default_factory=dict, repr=False)
    open_by_slot: dict[SlotKey, list[WindowKey]] = field(default_factory=dict, repr=False)
    closed_by_slot: dict[SlotKey, list[WindowKey]] = field(default_factory=dict, repr=False)
    ytd_by_slot: dict[SlotKey, list[YtdKey]] = field(default_factory=dict, repr=False)
    closed_by_start: dict[int, list[WindowKey]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.sizes = tuple(sorted(self.sizes))
        if any(size % self.sizes[0] for size in self.sizes) or DAY % self.sizes[0]:
            raise ValueError(
                f"window sizes {self.sizes} must be multiples of the smallest, which must divide a day"
            )
        self.reindex()

    def reindex(self) -> None:
        """Rebuild the indexes from ``open``, ``closed_days`` and ``ytd`` (after a restore)."""
        self.open_by_window, self.open_by_slot = {}, {}
        self.closed_by_slot, self.ytd_by_slot, self.closed_by_start = {}, {}, {}
        for key in self.open:
            self._index_open(key)
        for key in self.closed_days:
            self._index_closed(key)
        for ykey in self.ytd:
            self._index_ytd(ykey)

    def _index_open(self, key: WindowKey) -> None:
        indicator, dims, size, start = key
        self.open_by_window.setdefault((size, start), []).append(key)
        commune = commune_of(dims)
        if commune is not None:
            self.open_by_slot.setdefault((indicator, commune, size, start), []).append(key)

    def _index_closed(self, key: WindowKey) -> None:
        indicator, dims, size, start = key
        self.closed_by_start.setdefault(start, []).append(key)
        commune = commune_of(dims)
        if commune is not None:
            self.closed_by_slot.setdefault((indicator, commune, size, start), []).append(key)

    def _index_ytd(self, ykey: YtdKey) -> None:
        indicator, dims, year = ykey
        commune = commune_of(dims)
        if commune is not None:
            self.ytd_by_slot.setdefault((indicator, commune, 0, year_start(year)), []).append(ykey)

    def _open_acc(self, key: WindowKey) -> Accumulator:
        acc = self.open.get(key)
        if acc is None:
            acc = self.open[key] = Accumulator()
            self._index_open(key)
        return acc

    def _ytd_acc(self, ykey: YtdKey) -> Accumulator:
        acc = self.ytd.get(ykey)
        if acc is None:
            acc = self.ytd[ykey] = Accumulator()
            self._index_ytd(ykey)
        return acc

    def latest_close_until(self, limit: int) -> int | None:
        """The latest watermark up to ``limit`` at which an open window closes (None: none
        does): moved there, the watermark closes every open window it can and nothing more."""
        grace = self.grace_seconds
        closes = [close for size, start in self.open_by_window if (close := start + size + grace) <= limit]
        return max(closes, default=None)

    def advance_watermark(self, to: int) -> bool:
        """Move the watermark to ``to`` without a reading (never back); the windows it passes
        close at the next flush. True if it moved. For a partition that receives nothing."""
        if to <= self.watermark:
            return False
        self.watermark = to
        return True

    def _closed(self, size: int, start: int) -> bool:
        return self.watermark >= start + size + self.grace_seconds

    def _forgotten(self, day_start: int) -> bool:
        """A closed day no reading can reach any more: validation refuses events that old."""
        return day_start + DAY <= self.watermark - self.closed_days_kept_seconds

    def _remember(self, event: tuple[str, str], ts: int) -> None:
        seen = self.seen
        seen[event] = ts - ts % DAY
        while len(seen) > self.max_seen_ids:
            seen.popitem(last=False)  # the oldest arrival

    def add(self, contribution: Contribution) -> str:
        """Count one reading; returns "counted", "late" (via corrections) or "duplicate"."""
        ts = epoch_seconds(contribution.event_time)
        event = (contribution.producer_id, contribution.event_id)
        if event in self.seen:
            self.duplicates += 1
            return "duplicate"
        self._remember(event, ts)
        late = False
        for measure in contribution.measures:
            for size in self.sizes:
                start = ts - ts % size
                key = (measure.indicator, measure.dimensions, size, start)
                if not self._closed(size, start):
                    self._open_acc(key).add(measure.value)
                    self.touched.add(key)
                    continue
                late = True
                if size != DAY or self._forgotten(start):
                    continue  # sub-day windows are not corrected; a forgotten day cannot be
                # Corrections path: a closed day is revised, never left wrong.
                acc = self.closed_days.get(key)
                if acc is None:
                    acc = self.closed_days[key] = Accumulator()
                    self._index_closed(key)
                acc.add(measure.value)
                acc.revision += 1
                self.touched.add(key)
            year = contribution.event_time.year
            ykey = (measure.indicator, measure.dimensions, year)
            self._ytd_acc(ykey).add(measure.value)
            self.touched_ytd.add(ykey)
        self.watermark = max(self.watermark, ts)
        if late:
            self.late += 1
        else:
            self.counted += 1
        return "late" if late else "counted"

    def add_all(self, contributions: Iterable[Contribution]) -> Counter[str]:
        """Count a batch of readings; the same result as `add` one by one, cheaper.

        A reading that is on time for the smallest window is on time for every window
        (larger windows holding it end later), so on-time readings are summed per smallest
        window in ``pending`` until the flush adds each sum once to each window size; only
        duplicates and late readings take the per-reading path.
        """
        outcomes: Counter[str] = Counter()
        smallest = self.sizes[0]
        pending, seen, grace = self.pending, self.seen, self.grace_seconds
        watermark = self.watermark
        counted = 0
        for c in contributions:
            ts = epoch_seconds(c.event_time)
            start = ts - ts % smallest
            event = (c.producer_id, c.event_id)
            if event in seen or watermark >= start + smallest + grace:
                outcomes[self.add(c)] += 1  # duplicate or late: the careful path
                watermark = self.watermark
                continue
            seen[event] = ts - ts % DAY
            for indicator, dims, value in c.measures:
                bkey = (indicator, dims, start)
                nanos = round(value * NANOS_PER_UNIT)
                bucket = pending.get(bkey)
                if bucket is None:
                    pending[bkey] = [nanos, 1]
                else:
                    bucket[0] += nanos
                    bucket[1] += 1
            if ts > watermark:
                self.watermark = watermark = ts
            counted += 1
        if counted:
            self.counted += counted
            outcomes["counted"] += counted
        while len(seen) > self.max_seen_ids:
            seen.popitem(last=False)
        return outcomes

    def settle(self) -> None:
        """Add the pending on-time sums to their windows of every size and to year-to-date."""
        open_, touched, touched_ytd, sizes = self.open, self.touched, self.touched_ytd, self.sizes
        for (indicator, dims, start), (nanos, count) in self.pending.items():
            for size in sizes:
                key = (indicator, dims, size, start - start % size)
                acc = open_.get(key)
                if acc is None:
                    acc = self._open_acc(key)
                acc.nanos += nanos
                acc.count += count
                touched.add(key)
            ykey = (indicator, dims, year_of_day(start - start % DAY))
            yacc = self.ytd.get(ykey)
            if yacc is None:
                yacc = self._ytd_acc(ykey)
            yacc.nanos += nanos
            yacc.count += count
            touched_ytd.add(ykey)
        self.pending.clear()

    def flush(self) -> list[WindowUpdate]:
        """Updates for every window changed since the last flush, then close what is due."""
        self.settle()
        updates: list[WindowUpdate] = []
        append = updates.append
        open_, closed_days = self.open, self.closed_days
        for key in sorted(self.touched):
            acc = open_.get(key) or closed_days[key]
            append(WindowUpdate(*key, acc.total, acc.count, key in closed_days, acc.revision))
        for ykey in sorted(self.touched_ytd):
            acc = self.ytd[ykey]
            indicator, dims, year = ykey
            append(WindowUpdate(indicator, dims, 0, year_start(year), acc.total, acc.count, False, 0))
        self.touched.clear()
        self.touched_ytd.clear()
        due = [window for window in self.open_by_window if self._closed(*window)]
        closing: list[WindowKey] = []
        for window in due:
            closing += self.open_by_window.pop(window)
        for key in sorted(closing):
            indicator, dims, size, start = key
            acc = open_.pop(key)
            corrections = closed_days.get(key) if size == DAY else None
            if corrections is not None:
                # Late readings for this day came after it closed on event time but before
                # this flush emitted it: they belong to its final value.
                acc.merge(corrections.nanos, corrections.count)
            append(WindowUpdate(indicator, dims, size, start, acc.total, acc.count, True, acc.revision))
            commune = commune_of(dims)
            if commune is not None:
                self.open_by_slot.pop((indicator, commune, size, start), None)
            if size == DAY:
                closed_days[key] = acc
                if corrections is None:
                    self._index_closed(key)
        self._forget_old_days()
        return updates

    def _forget_old_days(self) -> None:
        for start in [s for s in self.closed_by_start if self._forgotten(s)]:
            for key in self.closed_by_start.pop(start):
                del self.closed_days[key]
                commune = commune_of(key[1])
                if commune is not None:
                    self.closed_by_slot.pop((key[0], commune, key[2], key[3]), None)


def idle_watermark(quiet_watermark: int, quiet_seconds: float, wall_clock: int, grace_seconds: int) -> int:
    """How far the watermark of a partition that has received nothing for ``quiet_seconds``
    may go (epoch seconds): as far as event time would have run since, from ``quiet_watermark``
    (its watermark when it last received a record), and no nearer to ``wall_clock`` than the
    grace. The first bound keeps a backfill that pauses from closing what it is about to send;
    the second leaves readings delayed in transit, or held upstream, the grace on top of the
    grace before their windows close (docs/indicators.md, "Quiet partitions")."""
    return min(quiet_watermark + int(quiet_seconds), wall_clock - grace_seconds)


@lru_cache(maxsize=65536)
def commune_of(dims: Dimensions) -> str | None:
    """The commune a series belongs to, if it has one."""
    for name, value in dims:
        if name == "commune":
            return value
    return None


@lru_cache(maxsize=4096)
def year_start(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp())


@lru_cache(maxsize=4096)
def year_of_day(day_start: int) -> int:
    return datetime.fromtimestamp(day_start, UTC).year
