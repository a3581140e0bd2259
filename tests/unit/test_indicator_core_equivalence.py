"""The indexed flush and derive() give exactly the updates of a full scan of the state.

`WindowState` keeps indexes (open windows per window, windows per commune slot) and its
closed windows in a store, so that a flush and the derived indicators look only at what
they need. The oracle keeps every window of every size in one dict, adds each reading to
each of its windows at the flush (correcting a closed one) and scans the whole at each
flush. Same values bit for bit (the ratios' float sums taken over their terms sorted by
dimensions, as derive() does), same order of updates, for random event sequences with late,
out-of-order and repeated readings, flushes at random points, commits to the store and
checkpoint restores.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.local_calendar import DAY, MONTH, ZoneCalendar
from streams.indicators.derived import derive
from streams.indicators.enrichment import Contribution, Measure
from streams.indicators.window_state import WindowState, WindowUpdate, commune_of, to_nanos
from streams.indicators.window_state_codec import PartitionState, decode, encode

# Where the random readings begin, and whose days they are counted in: each crosses a day and
# a year, or the 25-hour day of October's clock change.
STARTS = [
    ("UTC", datetime(2026, 12, 31, 20, tzinfo=UTC)),
    ("Europe/Paris", datetime(2026, 12, 31, 20, tzinfo=UTC)),
    ("Europe/Paris", datetime(2026, 10, 24, 20, tzinfo=UTC)),
    ("Europe/Paris", datetime(2026, 3, 31, 12, tzinfo=UTC)),  # a local month's end
]
SIZES = (60, 900, 3600, DAY, MONTH)
WHO = {"pm25": 15.0}


class ScanningModel:
    """The oracle: every window of every size in one dict, scanned whole at each flush, and
    every reading added to each of its windows (open, or closed: corrected) at the flush."""

    def __init__(self, grace: int, zone: str) -> None:
        self.grace = grace
        self.zone = UTC if zone == "UTC" else ZoneInfo(zone)
        self.windows: dict[tuple[object, ...], list] = {}  # type: ignore[type-arg]  # [nanos, count, revision, closed]
        self.ytd: dict[tuple[object, ...], list[int]] = {}
        self.seen: set[tuple[str, str]] = set()
        self.batch: list[Contribution] = []
        self.watermark = 0

    def add_all(self, contributions: list[Contribution]) -> None:
        for c in contributions:
            if (c.producer_id, c.event_id) not in self.seen:
                self.seen.add((c.producer_id, c.event_id))
                self.batch.append(c)
                self.watermark = max(self.watermark, int(c.event_time.timestamp()))

    def flush(self) -> list[WindowUpdate]:
        touched, corrected, touched_ytd = set(), set(), set()
        for c in self.batch:
            ts = int(c.event_time.timestamp())
            for indicator, dims, value in c.measures:
                for size in SIZES:
                    key = (indicator, dims, size, self.start(size, ts))
                    window = self.windows.setdefault(key, [0, 0, 0, False])
                    window[0] += to_nanos(value)
                    window[1] += 1
                    (corrected if window[3] else touched).add(key)
                local_year = c.event_time.astimezone(self.zone).year
                year = int(datetime(local_year, 1, 1, tzinfo=self.zone).timestamp())
                ytd = self.ytd.setdefault((indicator, dims, year), [0, 0])
                ytd[0] += to_nanos(value)
                ytd[1] += 1
                touched_ytd.add((indicator, dims, year))
        self.batch = []
        updates = [
            WindowUpdate(*k, w[0] / 1e9, w[1], False, w[2])
            for k in sorted(touched)
            for w in [self.windows[k]]
        ]  # type: ignore[misc]
        for key in sorted(corrected):  # type: ignore[type-var]
            window = self.windows[key]
            window[2] += 1
            updates.append(WindowUpdate(*key, window[0] / 1e9, window[1], True, window[2]))  # type: ignore[arg-type]
        for key in sorted(touched_ytd):  # type: ignore[type-var]
            nanos, count = self.ytd[key]
            updates.append(WindowUpdate(key[0], key[1], 0, key[2], nanos / 1e9, count, False, 0))  # type: ignore[arg-type]
        closing = [
            k for k, w in self.windows.items() if not w[3] and self.watermark >= self.end(k) + self.grace
        ]  # type: ignore[operator]
        for key in sorted(closing):  # type: ignore[type-var]
            window = self.windows[key]
            window[3] = True
            updates.append(WindowUpdate(*key, window[0] / 1e9, window[1], True, window[2]))  # type: ignore[arg-type]
        return updates

    def start(self, size: int, ts: int) -> int:
        """The start of the window of ``size`` holding ``ts``: a local day's or month's midnight,
        from the zone database."""
        if size not in (DAY, MONTH):
            return ts - ts % size
        local = datetime.fromtimestamp(ts, self.zone)
        first = 1 if size == MONTH else local.day
        return int(datetime(local.year, local.month, first, tzinfo=self.zone).timestamp())

    def end(self, key: tuple[object, ...]) -> int:
        size, start = key[2], key[3]
        assert isinstance(size, int) and isinstance(start, int)
        if size not in (DAY, MONTH):
            return start + size
        local = datetime.fromtimestamp(start, self.zone).date()
        following = local + timedelta(days=1) if size == DAY else (local + timedelta(days=31)).replace(day=1)
        return int(datetime(following.year, following.month, following.day, tzinfo=self.zone).timestamp())

    def scanned(self, updates: list[WindowUpdate]) -> Iterator[WindowUpdate]:
        """Every window as the flush left it, then the flush's own updates (the newest)."""
        fresh = {(u.indicator, u.dimensions, u.size, u.start): u for u in updates}
        for key, (nanos, count, revision, closed) in self.windows.items():
            if key not in fresh:
                yield WindowUpdate(*key, nanos / 1e9, count, closed, revision)  # type: ignore[arg-type]
        for (indicator, dims, year), (nanos, count) in self.ytd.items():
            if (indicator, dims, 0, year) not in fresh:
                yield WindowUpdate(indicator, dims, 0, year, nanos / 1e9, count, False, 0)  # type: ignore[arg-type]
        yield from fresh.values()


def _scanning_derive(updates: list[WindowUpdate], state: ScanningModel) -> list[WindowUpdate]:
    """The derived indicators from a full scan, by their formulas (docs/indicators.md)."""
    sums: dict[tuple[str, str, int, int, str], list] = {}  # type: ignore[type-arg]
    for w in sorted(state.scanned(updates), key=lambda w: w.dimensions):
        commune = commune_of(w.dimensions)
        mode = dict(w.dimensions).get("mode", "") if w.indicator == "passenger_km" else ""
        if commune is not None:
            term = sums.setdefault((w.indicator, commune, w.size, w.start, mode), [0.0, True, 0])
            term[0] += w.total
            term[1] = term[1] and w.final
            term[2] = max(term[2], w.revision)
    derived, shares, modal = [], set(), set()
    for u in updates:
        slot = (commune_of(u.dimensions) or "", u.size, u.start)
        if u.indicator in ("energy_consumed_kwh", "renewable_production_kwh"):
            shares.add(slot)
        elif u.indicator == "passenger_km":
            modal.add(slot)
        elif u.indicator == "environment_value" and u.size == DAY and u.count:
            exceeded = 1.0 if u.total / u.count > WHO["pm25"] else 0.0
            derived.append(
                WindowUpdate("who_exceedance", u.dimensions, DAY, u.start, exceeded, 1, u.final, u.revision)
            )
    for commune, size, start in sorted(shares):
        cons = sums.get(("energy_consumed_kwh", commune, size, start, ""))
        prod = sums.get(("renewable_production_kwh", commune, size, start, ""), [0.0, True, 0])
        if cons is not None and cons[0] > 0:
            dims = (("commune", commune),)
            final, revision = cons[1] and prod[1], max(cons[2], prod[2])
            derived.append(
                WindowUpdate(
                    "renewable_share_ratio", dims, size, start, prod[0] / cons[0], 1, final, revision
                )
            )
    for commune, size, start in sorted(modal):
        modes = {k[4]: t for k, t in sums.items() if k[:4] == ("passenger_km", commune, size, start)}
        everything = sum(t[0] for t in modes.values())
        if everything > 0:
            final, revision = all(t[1] for t in modes.values()), max(t[2] for t in modes.values())
            for mode, t in sorted(modes.items()):
                dims = (("commune", commune), ("mode", mode))
                derived.append(
                    WindowUpdate(
                        "modal_share_ratio", dims, size, start, t[0] / everything, 1, final, revision
                    )
                )
    return derived  # fmt: skip


def _contribution(
    t0: datetime, event_id: str, minutes: float, commune: str, kind: int, value: float
) -> Contribution:
    at = t0 + timedelta(minutes=minutes)
    place = ("commune", commune)
    measures = [
        Measure("energy_consumed_kwh", (("carrier", "electricity"), place, ("sector", "residential")), value),
        Measure("energy_consumed_kwh", (("carrier", "gas"), place, ("sector", "tertiary")), value / 3),
        Measure("renewable_production_kwh", (("commune", commune),), value * 0.7),
        Measure("passenger_km", (("commune", commune), ("mode", "bus")), value),
        Measure("passenger_km", (("commune", commune), ("mode", "bike")), value / 7),
        Measure("environment_value", (place, ("quantity", "pm25"), ("station", "s1")), value * 9),
    ]  # fmt: skip
    return Contribution(event_id, "p", at, (measures[kind], measures[(kind + 1) % len(measures)]), "p")


events = st.lists(
    st.tuples(
        st.integers(0, 60),  # event id: repeats are duplicates
        st.floats(-200, 2000),  # minutes after T0: a day and more, some late
        st.sampled_from(["17300", "17028"]),
        st.integers(0, 5),
        st.floats(0.001, 1000),
        st.booleans(),  # flush after this reading
    ),
    max_size=120,
)


# Derandomized: the next test asserts which paths these examples reached, and with a new seed
# at each run a run now and then missed one (a unit run failed 1 in 885, passing alone).
@pytest.mark.parametrize(("zone", "t0"), STARTS)
@settings(max_examples=150, deadline=None, derandomize=True)
@given(events, st.integers(0, 119), st.sets(st.integers(0, 119)))
def test_indexed_flush_and_derive_equal_a_full_scan(
    zone: str,
    t0: datetime,
    items: list,
    restore_at: int,
    commits: set,  # type: ignore[type-arg]
) -> None:
    calendar = ZoneCalendar(zone)
    indexed = WindowState(SIZES, grace_seconds=300, calendar=calendar)
    scanning = ScanningModel(grace=300, zone=zone)
    got: list[WindowUpdate] = []
    expected: list[WindowUpdate] = []
    batch: list[Contribution] = []
    for n, (event_id, minutes, commune, kind, value, flush) in enumerate(items):
        batch.append(_contribution(t0, f"e{event_id}", minutes, commune, kind, value))
        if flush or n == len(items) - 1:
            indexed.add_all(batch)
            scanning.add_all(batch)
            batch = []
            updates = indexed.flush()
            got += updates + derive(updates, indexed, WHO)
            updates = scanning.flush()
            expected += updates + _scanning_derive(updates, scanning)
            if n in commits:  # closed windows read back from the store from now on
                indexed.commit(indexed.carried_version(), indexed.watermark)
            if n >= restore_at:  # a restart: the indexes come back from the checkpoint
                store = indexed.store
                indexed = decode(encode(PartitionState(indexed)), 0, calendar).windows
                indexed.attach(store)
                restore_at = len(items)
    assert got == expected
    seen.update(u.indicator for u in got if u.final)
    seen.update(f"revision {u.indicator} {u.size}" for u in got if u.revision)


seen: set[str] = set()


def test_the_random_sequences_reached_every_path() -> None:
    # Runs after the property above (file order): closed windows, corrected days and every
    # derived indicator were compared, not only open windows.
    assert {"renewable_share_ratio", "modal_share_ratio", "who_exceedance"} <= seen
    assert {f"revision energy_consumed_kwh {size}" for size in SIZES} <= seen
    assert {"revision renewable_share_ratio 60", "revision renewable_share_ratio 86400"} <= seen
