"""Deterministic window state of one partition: sums per series and window, on event time.

Pure and replayable: the same contributions in the same order give the same state and the
same updates, which is what makes results exact after a crash (state is restored from a
checkpoint and the partition replayed from the checkpoint's offset; see docs/indicators.md).
Sums are exact: each value is counted in billionths of its unit, as an integer
(``NANOS_PER_UNIT``), so a window's total does not depend on the order of its readings nor
on how they were grouped between flushes, which lets every reading wait, summed per
smallest window, until the flush adds it to every window size at once.

- Windows are tumbling, per size; a window closes when the partition's *frontier* passes its
  end plus the grace period, and its value is emitted final. The frontier is the progress of
  the producers that feed the partition: the lowest of their own watermarks (the highest
  event time each has sent) among those the engine says still send (``holding``: heard
  within the idle time), and the partition's watermark (the highest of all) once none does.
  A producer's interval readings, placed at their interval's start, make a progress of their
  own (``Contribution.stream``): they trail its other readings by an interval.
  It never goes back: a producer that starts sending history holds back the windows still
  open, not those already closed.
- An event arriving for a window still open updates it (and the window is re-emitted).
- An event for a window already closed is *late*, and corrects it: the closed window is read
  back from the store of closed windows (closed_windows.py), the event added, and the window
  re-emitted final with ``revision + 1`` (once per flush that changes it), in every window
  size, as long as the window is within its size's horizon (``CORRECTION_HORIZON_SECONDS``).
  Beyond it the event still counts in the larger windows and the year to date.
- A repeated event is counted once: ids are unique per producer (docs/contracts.md), so the
  last ``max_seen_ids`` (producer, event id) pairs are remembered; two producers may use the
  same id.
- The closed windows changed since the store's last commit (``closed``) stay here, and in the
  checkpoint, until a delivered checkpoint lets the engine commit them (``commit``).
- A partition that receives nothing may have its watermark moved forward without a reading
  (``advance_watermark``, to a point ``idle_watermark`` allows, decided by engine.py): its
  windows then close as if time had passed, and a reading that comes after for one of them is
  late, as above.
"""

from __future__ import annotations

import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from schemas.local_calendar import DAY, MONTH, QUARTER_HOUR, UTC_CALENDAR, Calendar, window_end
from streams.indicators.closed_windows import (
    ClosedWindows,
    MemoryClosedWindows,
    StoreVersion,
    reconcile,
    slot_of,
)
from streams.indicators.enrichment import Contribution, Dimensions
from streams.indicators.window_assignment import epoch_seconds
from streams.indicators.window_sums import (
    NANOS_PER_UNIT,
    Accumulator,
    SeriesKey,
    SlotKey,
    WindowKey,
    YtdKey,
    commune_of,
    to_nanos,
)

__all__ = [
    "NANOS_PER_UNIT", "Accumulator", "SeriesKey", "SlotKey", "WindowKey", "YtdKey", "commune_of", "to_nanos",
]  # fmt: skip

LONG_HORIZON_SECONDS = 402 * DAY
"""How long behind the watermark a closed window of 15 minutes or more is kept for
corrections: validation refuses events more than ``max_past_days`` (400) old or
``max_future_seconds`` ahead (reference/data/plausibility.toml), so no accepted reading can
reach an older window; two days of margin for clocks and validation workers."""

CORRECTION_HORIZON_SECONDS: dict[int, int] = {60: 2 * DAY}
"""Per window size, how long behind the watermark a closed window is still corrected (the
others: ``LONG_HORIZON_SECONDS``). Minute windows for 48 hours: a year of them per series
would be 525 600 windows, and what a minute says is for operators watching now."""


PRODUCER_HOLD_SECONDS = DAY
"""How far behind the partition's watermark a producer still sending may hold windows open: a
distributor's next-day delivery is on time; further behind (a history upload) its readings
correct closed windows, and the live windows neither wait for it nor pile up in memory."""

FORGET_EVERY_SECONDS = 3600
"""How far the watermark moves between two forgettings of the windows past their horizons."""


def horizon_of(size: int) -> int:
    return CORRECTION_HORIZON_SECONDS.get(size, LONG_HORIZON_SECONDS)


class WindowUpdate(NamedTuple):
    """A window's value to publish; ``size`` 0 means year-to-date (start = 1 January), and
    86400 a day of the state's calendar (23 to 25 hours where clocks change).

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
    # Where days, months and years begin (local_calendar.py): the worker's is ZC_TIME_ZONE's.
    calendar: Calendar = field(default=UTC_CALENDAR, repr=False)
    # Months that began before this instant are not counted: a state restored from a checkpoint
    # taken before month windows began counting them in their middle (window_state_codec.py).
    months_from: int = 0
    open: dict[WindowKey, Accumulator] = field(default_factory=dict)
    ytd: dict[YtdKey, Accumulator] = field(default_factory=dict)
    # Closed windows committed by a delivered checkpoint (closed_windows.py).
    store: ClosedWindows = field(default_factory=MemoryClosedWindows, repr=False)
    # Closed windows changed (or closed) since the store's last commit: read before the store,
    # carried by the checkpoint, committed once it is delivered.
    closed: dict[WindowKey, Accumulator] = field(default_factory=dict)
    # The store's lineage (drawn when a state starts empty) and its commits so far.
    epoch: str = field(default_factory=lambda: uuid.uuid4().hex)
    generation: int = 0
    # Windows that closed before this frontier and are not in the store are unknown, not new:
    # the state was migrated from a checkpoint format that kept its closed days only.
    floor: int = 0
    forgotten_at: int = field(default=0, repr=False)  # the watermark of the last forgetting
    # (producer, event id) -> its day start, in arrival order (the oldest evicted first, in O(1)).
    seen: OrderedDict[tuple[str, str], int] = field(default_factory=OrderedDict)
    watermark: int = 0
    # Progress per producer's stream (its highest placed event time) and the frontier it
    # makes (see above).
    producers: dict[str, int] = field(default_factory=dict)
    frontier: int = 0
    heard: set[str] = field(default_factory=set)  # streams heard since the last flush
    touched: set[WindowKey] = field(default_factory=set)
    corrected: set[WindowKey] = field(default_factory=set)
    touched_ytd: set[YtdKey] = field(default_factory=set)
    # Readings since the last flush, summed per smallest window: (indicator, dims, start) ->
    # [nanos, count]. The flush adds each to every window size (``settle``).
    pending: dict[tuple[str, Dimensions, int], list[int]] = field(default_factory=dict)
    counted: int = 0
    duplicates: int = 0
    late: int = 0
    # Readings times window sizes not corrected because the window was past its horizon.
    past_horizon: int = 0
    # Windows the last flush closed (a figure for /metrics, not state: never checkpointed).
    closed_by_last_flush: int = field(default=0, repr=False)
    # Indexes over the dicts above, in their insertion order, so that a flush and the
    # derived indicators look at the windows they need instead of scanning the state:
    # open windows per (size, start), and open, changed closed and year-to-date windows per
    # (indicator, commune, size, start), ``size`` 0 for year-to-date (start = 1 January).
    open_by_window: dict[tuple[int, int], list[WindowKey]] = field(default_factory=dict, repr=False)
    open_by_slot: dict[SlotKey, list[WindowKey]] = field(default_factory=dict, repr=False)
    closed_by_slot: dict[SlotKey, list[WindowKey]] = field(default_factory=dict, repr=False)
    ytd_by_slot: dict[SlotKey, list[YtdKey]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.sizes = tuple(sorted(self.sizes))
        if any(size % self.sizes[0] for size in self.sizes) or DAY % self.sizes[0]:
            raise ValueError(
                f"window sizes {self.sizes} must be multiples of the smallest, which must divide a day"
            )
        if DAY in self.sizes and self.calendar.name != "UTC" and QUARTER_HOUR % self.sizes[0]:
            raise ValueError(
                f"window sizes {self.sizes}: local days ({self.calendar.name}) begin on quarter-hours, "
                "so the smallest window must divide 15 minutes"
            )
        self.horizons = {size: horizon_of(size) for size in self.sizes}
        self.reindex()

    def reindex(self) -> None:
        """Rebuild the indexes from ``open``, ``closed`` and ``ytd`` (after a restore)."""
        self.open_by_window, self.open_by_slot = {}, {}
        self.closed_by_slot, self.ytd_by_slot = {}, {}
        for key in self.open:
            self._index_open(key)
        for key in self.closed:
            self.closed_by_slot.setdefault(slot_of(key), []).append(key)
        for ykey in self.ytd:
            self._index_ytd(ykey)

    # The store of closed windows and its commits (closed_windows.py).

    def attach(self, store: ClosedWindows, carried_indexes: Mapping[str, bytes] = {}) -> None:
        """Use ``store`` for closed windows, brought to this state's version (after a restore,
        the checkpoint's, with the meter indexes it carries): ``StoreOutOfStep`` if it cannot be."""
        version = self.carried_version(bool(carried_indexes))
        reconcile(store, version, self.closed, carried_indexes)
        self.store, self.generation = store, version.generation
        self.closed.clear()
        self.closed_by_slot.clear()

    def carried_version(self, carrying_indexes: bool = False) -> StoreVersion:
        """The store version a checkpoint taken now stands for: the next commit's if closed
        windows (or, ``carrying_indexes``, meter indexes) changed since the last one (it carries
        them), else the last commit's."""
        changed = bool(self.closed) or carrying_indexes
        return StoreVersion(self.epoch, self.generation + 1 if changed else self.generation)

    def commit(
        self,
        version: StoreVersion,
        watermark: int,
        indexes: Mapping[str, bytes] = {},  # read only
    ) -> None:
        """Commit the changed closed windows as ``version`` (a delivered checkpoint's
        ``carried_version``), forgetting the windows past their horizons at ``watermark``, the
        checkpoint's: readings applied since may have moved this state's further, and a crash
        now would restore that checkpoint, whose horizon still holds those windows. ``indexes``:
        the meter indexes that checkpoint carries, committed with the windows."""
        if version.generation <= self.generation:
            return
        horizons = self.horizons
        forget: dict[int, int] = {}
        # Forgetting is a range deletion per size: once per hour of event time is enough, and
        # spares the store a tombstone per commit.
        if watermark and watermark - self.forgotten_at >= FORGET_EVERY_SECONDS:
            forget = {size: watermark - horizons[size] - size + 1 for size in self.sizes}
            self.forgotten_at = watermark
        self.store.commit(self.closed, version, forget, indexes)
        self.generation = version.generation
        self.closed.clear()
        self.closed_by_slot.clear()

    def closed_in_slot(self, slot: SlotKey) -> list[tuple[WindowKey, Accumulator]]:
        """The closed windows of a slot: those changed since the last commit, then the store's
        (none while the slot's window is open: the frontier never goes back)."""
        changed = self.closed_by_slot.get(slot, ())
        found = [(key, self.closed[key]) for key in changed]
        if self._closed(slot[2], slot[3]):
            found += [(key, acc) for key, acc in self.store.in_slot(slot) if key not in self.closed]
        return found

    def _index_open(self, key: WindowKey) -> None:
        indicator, dims, size, start = key
        self.open_by_window.setdefault((size, start), []).append(key)
        commune = commune_of(dims)
        if commune is not None:
            self.open_by_slot.setdefault((indicator, commune, size, start), []).append(key)

    def _index_ytd(self, ykey: YtdKey) -> None:
        indicator, dims, year = ykey
        commune = commune_of(dims)
        if commune is not None:
            self.ytd_by_slot.setdefault((indicator, commune, 0, self.calendar.year_start(year)), []).append(
                ykey
            )

    def _open_acc(self, key: WindowKey) -> Accumulator:
        acc = self.open.get(key)
        if acc is None:
            acc = self.open[key] = Accumulator()
            self._index_open(key)
        return acc

    def _closed_acc(self, key: WindowKey) -> Accumulator | None:
        """A closed window to correct: changed since the last commit, or read from the store;
        None if it was never published."""
        acc = self.closed.get(key)
        if acc is None:
            acc = self.store.get(key)
            if acc is not None:
                self.closed[key] = acc
                self.closed_by_slot.setdefault(slot_of(key), []).append(key)
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
        end = self.end_of
        closes = [
            close for size, start in self.open_by_window if (close := end(size, start) + grace) <= limit
        ]
        return max(closes, default=None)

    def advance_watermark(self, to: int) -> bool:
        """Move the watermark to ``to`` without a reading (never back); the windows it passes
        close at the next flush. True if it moved. For a partition that receives nothing."""
        if to <= self.watermark:
            return False
        self.watermark = to
        return True

    def advance_frontier(self, holding: Iterable[str]) -> None:
        """Move the frontier to the lowest watermark of the producers ``holding`` (those still
        sending), or to the partition's watermark when none is, never more than
        ``PRODUCER_HOLD_SECONDS`` behind it: never back."""
        producers = self.producers
        lowest = min((producers[p] for p in holding if p in producers), default=self.watermark)
        lowest = max(lowest, self.watermark - PRODUCER_HOLD_SECONDS)
        if lowest > self.frontier:
            self.frontier = lowest

    def end_of(self, size: int, start: int) -> int:
        """Where the window of ``size`` beginning at ``start`` ends (a day: the calendar's)."""
        return window_end(self.calendar, size, start)

    def _closed(self, size: int, start: int) -> bool:
        return self.frontier >= self.end_of(size, start) + self.grace_seconds

    def _past_horizon(self, size: int, start: int) -> bool:
        """A closed window no correction may reach: forgotten, or about to be."""
        return self.end_of(size, start) <= self.watermark - self.horizons[size]

    def add(self, contribution: Contribution) -> str:
        """Count one reading; returns "counted", "late" (it corrects closed windows) or "duplicate"."""
        (outcome,) = self.add_all([contribution])
        return outcome

    def add_all(self, contributions: Iterable[Contribution]) -> Counter[str]:
        """Count a batch of readings, summed per smallest window in ``pending`` until the flush
        adds each sum once to each window size, open or closed: a reading is late when its
        smallest window has closed (every larger one holding it ends later)."""
        outcomes: Counter[str] = Counter()
        smallest = self.sizes[0]
        pending, seen, grace = self.pending, self.seen, self.grace_seconds
        watermark, frontier, producers, heard = self.watermark, self.frontier, self.producers, self.heard
        counted = late = duplicates = 0
        stream, progress = "", -1  # the stream of the readings before (most records have one)
        for c in contributions:
            ts = epoch_seconds(c.event_time)
            start = ts - ts % smallest
            event = (c.producer_id, c.event_id)
            if event in seen:
                duplicates += 1
                continue
            seen[event] = ts - ts % DAY
            if c.stream != stream:
                if stream:
                    producers[stream] = progress
                stream = c.stream
                progress = producers.get(stream, -1)
                heard.add(stream)
            if ts > progress:
                progress = ts
            for indicator, dims, value in c.measures:
                bkey = (indicator, dims, start)
                nanos = round(value * NANOS_PER_UNIT)
                bucket = pending.get(bkey)
                if bucket is None:
                    pending[bkey] = [nanos, 1]
                else:
                    bucket[0] += nanos
                    bucket[1] += 1
            if frontier >= start + smallest + grace:
                late += 1
            else:
                counted += 1
                if ts > watermark:
                    watermark = ts
        if stream:
            producers[stream] = progress
        self.watermark = watermark
        self.counted += counted
        self.late += late
        self.duplicates += duplicates
        for outcome, n in (("counted", counted), ("late", late), ("duplicate", duplicates)):
            if n:
                outcomes[outcome] = n
        while len(seen) > self.max_seen_ids:
            seen.popitem(last=False)
        return outcomes

    def recount(self, recounts: Iterable[tuple[Contribution, int]]) -> None:
        """Add sums that are no new reading: a later index's delta taken back (``count`` -1) and
        counted again from a late index before it (+1) (meter_indexes.py). Like readings, they
        wait in ``pending`` and correct their windows, open or closed, at the flush."""
        smallest, pending = self.sizes[0], self.pending
        for c, count in recounts:
            ts = epoch_seconds(c.event_time)
            start = ts - ts % smallest
            for indicator, dims, value in c.measures:
                bucket = pending.setdefault((indicator, dims, start), [0, 0])
                bucket[0] += round(value * NANOS_PER_UNIT)
                bucket[1] += count

    def settle(self) -> None:
        """Add the pending sums to their windows of every size (open, or closed and within their
        horizon: corrected) and to year-to-date."""
        open_, touched, touched_ytd, sizes = self.open, self.touched, self.touched_ytd, self.sizes
        corrected, watermark, grace = self.corrected, self.watermark, self.grace_seconds
        horizons, frontier = self.horizons, self.frontier
        day_of, month_of, year_of = self.calendar.day, self.calendar.month, self.calendar.year_of
        months_from = self.months_from
        for (indicator, dims, start), (nanos, count) in self.pending.items():
            for size in sizes:
                if size < DAY:
                    wstart = start - start % size
                    wend = wstart + size
                elif size == DAY:
                    wstart, wend = day_of(start)
                elif size == MONTH:
                    wstart, wend = month_of(start)
                    if wstart < months_from:  # a month the state began counting in the middle of
                        continue
                else:
                    wstart = start - start % size
                    wend = wstart + size
                key = (indicator, dims, size, wstart)
                acc = open_.get(key)
                if acc is not None:
                    touched.add(key)
                elif frontier < wend + grace:
                    acc = self._open_acc(key)
                    touched.add(key)
                elif wend <= watermark - horizons[size]:
                    self.past_horizon += count
                    continue
                else:
                    acc = self._closed_acc(key)
                    if acc is not None:
                        corrected.add(key)
                    elif wend + grace <= self.floor:  # closed before the store existed
                        self.past_horizon += count
                        continue
                    else:  # never published: opened, and closed by this flush
                        acc = self._open_acc(key)
                        touched.add(key)
                acc.nanos += nanos
                acc.count += count
            ykey = (indicator, dims, year_of(start))
            yacc = self.ytd.get(ykey)
            if yacc is None:
                yacc = self._ytd_acc(ykey)
            yacc.nanos += nanos
            yacc.count += count
            touched_ytd.add(ykey)
        self.pending.clear()

    def flush(self, holding: Iterable[str] = ()) -> list[WindowUpdate]:
        """Updates for every window changed since the last flush, then close what is due, up
        to the frontier the producers ``holding`` leave (none: the partition's watermark)."""
        self.settle()
        self.heard.clear()
        updates: list[WindowUpdate] = []
        append = updates.append
        open_, closed = self.open, self.closed
        for key in sorted(self.touched):
            acc = open_[key]
            append(WindowUpdate(*key, acc.total, acc.count, False, acc.revision))
        for key in sorted(self.corrected):
            acc = closed[key]
            acc.revision += 1
            append(WindowUpdate(*key, acc.total, acc.count, True, acc.revision))
        year_start = self.calendar.year_start
        for ykey in sorted(self.touched_ytd):
            acc = self.ytd[ykey]
            indicator, dims, year = ykey
            append(WindowUpdate(indicator, dims, 0, year_start(year), acc.total, acc.count, False, 0))
        self.touched.clear()
        self.corrected.clear()
        self.touched_ytd.clear()
        self.advance_frontier(holding)
        due = [window for window in self.open_by_window if self._closed(*window)]
        closing: list[WindowKey] = []
        for window in due:
            closing += self.open_by_window.pop(window)
        self.closed_by_last_flush = len(closing)
        for key in sorted(closing):
            indicator, dims, size, start = key
            acc = open_.pop(key)
            append(WindowUpdate(indicator, dims, size, start, acc.total, acc.count, True, acc.revision))
            commune = commune_of(dims)
            if commune is not None:
                self.open_by_slot.pop((indicator, commune, size, start), None)
            if not self._past_horizon(size, start):
                closed[key] = acc
                self.closed_by_slot.setdefault(slot_of(key), []).append(key)
        return updates


def idle_watermark(quiet_watermark: int, quiet_seconds: float, wall_clock: int, grace_seconds: int) -> int:
    """How far the watermark of a partition that has received nothing for ``quiet_seconds``
    may go (epoch seconds): as far as event time would have run since, from ``quiet_watermark``
    (its watermark when it last received a record), and no nearer to ``wall_clock`` than the
    grace. The first bound keeps a backfill that pauses from closing what it is about to send;
    the second leaves readings delayed in transit, or held upstream, the grace on top of the
    grace before their windows close (docs/indicators.md, "Quiet partitions")."""
    return min(quiet_watermark + int(quiet_seconds), wall_clock - grace_seconds)
