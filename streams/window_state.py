"""Deterministic window state of one partition: sums per series and window, on event time.

Pure and replayable: the same contributions in the same order give the same state and the
same updates, which is what makes results exact after a crash (state is restored from a
checkpoint and the partition replayed from the checkpoint's offset; see docs/indicators.md).

- Windows are tumbling, per size; a window closes when the partition's watermark (highest
  event time seen) passes its end plus the grace period, and its value is emitted final.
- An event arriving for a window still open updates it (and the window is re-emitted).
- An event whose sub-day windows have closed is *late*: it still counts, through the
  corrections path, in its day window (re-emitted with a higher revision if the day had
  closed) and in the year-to-date total. Nothing is dropped.
- A repeated event id is counted once (ids are remembered until their day window closes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.enrichment import Contribution, Dimensions
from streams.window_assignment import window_start

DAY = 86400


@dataclass(slots=True)
class Accumulator:
    total: float = 0.0
    count: int = 0
    revision: int = 0

    def add(self, value: float) -> None:
        self.total += value
        self.count += 1

    def merge(self, total: float, count: int) -> None:
        self.total += total
        self.count += count


SeriesKey = tuple[str, Dimensions]
WindowKey = tuple[str, Dimensions, int, int]  # indicator, dims, size, start


@dataclass(frozen=True, slots=True)
class WindowUpdate:
    """A window's value to publish; ``size`` 0 means year-to-date (start = 1 January)."""

    indicator: str
    dimensions: Dimensions
    size: int
    start: int
    total: float
    count: int
    final: bool
    revision: int


@dataclass
class WindowState:
    sizes: tuple[int, ...]
    grace_seconds: int
    max_seen_ids: int = 20_000
    open: dict[WindowKey, Accumulator] = field(default_factory=dict)
    closed_days: dict[WindowKey, Accumulator] = field(default_factory=dict)
    ytd: dict[tuple[str, Dimensions, int], Accumulator] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)  # event id -> its day start
    watermark: int = 0
    touched: set[WindowKey] = field(default_factory=set)
    touched_ytd: set[tuple[str, Dimensions, int]] = field(default_factory=set)
    counted: int = 0
    duplicates: int = 0
    late: int = 0

    def __post_init__(self) -> None:
        self.sizes = tuple(sorted(self.sizes))
        if any(size % self.sizes[0] for size in self.sizes) or DAY % self.sizes[0]:
            raise ValueError(
                f"window sizes {self.sizes} must be multiples of the smallest, which must divide a day"
            )

    def _closed(self, size: int, start: int) -> bool:
        return self.watermark >= start + size + self.grace_seconds

    def add(self, contribution: Contribution) -> str:
        """Count one reading; returns "counted", "late" (via corrections) or "duplicate"."""
        ts = int(contribution.event_time.timestamp())
        if contribution.event_id in self.seen:
            self.duplicates += 1
            return "duplicate"
        self.seen[contribution.event_id] = ts - ts % DAY
        while len(self.seen) > self.max_seen_ids:
            del self.seen[next(iter(self.seen))]  # the oldest arrival
        late = False
        for measure in contribution.measures:
            for size in self.sizes:
                start = window_start(contribution.event_time, size)
                key = (measure.indicator, measure.dimensions, size, start)
                if not self._closed(size, start):
                    self.open.setdefault(key, Accumulator()).add(measure.value)
                    self.touched.add(key)
                elif size == DAY:
                    # Corrections path: a closed day is revised, never left wrong.
                    acc = self.closed_days.setdefault(key, Accumulator())
                    acc.add(measure.value)
                    acc.revision += 1
                    self.touched.add(key)
                    late = True
                else:
                    late = True
            year = contribution.event_time.year
            ykey = (measure.indicator, measure.dimensions, year)
            self.ytd.setdefault(ykey, Accumulator()).add(measure.value)
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
        window first, then each sum is added once to each window size; only late readings
        take the per-reading path.
        """
        outcomes: Counter[str] = Counter()
        smallest = self.sizes[0]
        buckets: dict[tuple[str, Dimensions, int], Accumulator] = {}
        years: dict[tuple[str, Dimensions, int], Accumulator] = {}
        seen, grace = self.seen, self.grace_seconds
        for c in contributions:
            ts = int(c.event_time.timestamp())
            start = ts - ts % smallest
            if c.event_id in seen or self.watermark >= start + smallest + grace:
                outcomes[self.add(c)] += 1  # duplicate or late: the careful path
                continue
            seen[c.event_id] = ts - ts % DAY
            year = c.event_time.year
            for m in c.measures:
                bucket = buckets.get((m.indicator, m.dimensions, start))
                if bucket is None:
                    bucket = buckets[(m.indicator, m.dimensions, start)] = Accumulator()
                bucket.add(m.value)
                ykey = (m.indicator, m.dimensions, year)
                yacc = years.get(ykey)
                if yacc is None:
                    yacc = years[ykey] = Accumulator()
                yacc.add(m.value)
            if ts > self.watermark:
                self.watermark = ts
            self.counted += 1
            outcomes["counted"] += 1
        while len(seen) > self.max_seen_ids:
            del seen[next(iter(seen))]
        for (indicator, dims, start), bucket in buckets.items():
            for size in self.sizes:
                key = (indicator, dims, size, start - start % size)
                self.open.setdefault(key, Accumulator()).merge(bucket.total, bucket.count)
                self.touched.add(key)
        for ykey, yacc in years.items():
            self.ytd.setdefault(ykey, Accumulator()).merge(yacc.total, yacc.count)
            self.touched_ytd.add(ykey)
        return outcomes

    def flush(self) -> list[WindowUpdate]:
        """Updates for every window changed since the last flush, then close what is due."""
        updates: list[WindowUpdate] = []
        for key in sorted(self.touched):
            acc = self.open.get(key) or self.closed_days[key]
            updates.append(WindowUpdate(*key, acc.total, acc.count, key in self.closed_days, acc.revision))
        for ykey in sorted(self.touched_ytd):
            acc = self.ytd[ykey]
            indicator, dims, year = ykey
            start = year_start(year)
            updates.append(WindowUpdate(indicator, dims, 0, start, acc.total, acc.count, False, 0))
        self.touched.clear()
        self.touched_ytd.clear()
        for key in sorted(k for k in self.open if self._closed(k[2], k[3])):
            acc = self.open.pop(key)
            updates.append(WindowUpdate(*key, acc.total, acc.count, True, acc.revision))
            if key[2] == DAY:
                self.closed_days[key] = acc
        return updates


def year_start(year: int) -> int:
    from datetime import UTC, datetime

    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
