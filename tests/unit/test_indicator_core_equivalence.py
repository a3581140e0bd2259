"""The indexed flush and derive() give exactly the updates of a full scan of the state.

`WindowState` keeps indexes (open windows per window, windows per commune slot, closed days
per start) so that a flush and the derived indicators look only at what they need. The
oracle here is what they replaced: scan every open window, closed day and year-to-date
entry, at each flush. Same values bit for bit (the ratios' float sums taken over their terms
sorted by dimensions, as derive() does), same order of updates, for random event sequences with late,
out-of-order and repeated readings, flushes at random points and checkpoint restores.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.indicators.derived import derive
from streams.indicators.enrichment import Contribution, Measure
from streams.indicators.window_state import DAY, WindowState, WindowUpdate, commune_of, year_start
from streams.indicators.window_state_codec import PartitionState, decode, encode

T0 = datetime(2026, 12, 31, 20, tzinfo=UTC)  # crosses a day and a year
WHO = {"pm25": 15.0}


def _scanned(updates: list[WindowUpdate], state: WindowState) -> Iterator[WindowUpdate]:
    """Every window of the state as the flush left it, in the order the scan met them."""
    fresh = {(u.indicator, u.dimensions, u.size, u.start): u for u in updates}
    for key, acc in state.open.items():
        if key not in fresh:
            yield WindowUpdate(*key, acc.total, acc.count, False, acc.revision)
    for key, acc in state.closed_days.items():
        if key not in fresh:
            yield WindowUpdate(*key, acc.total, acc.count, True, acc.revision)
    for (indicator, dims, year), acc in state.ytd.items():
        if (indicator, dims, 0, year_start(year)) not in fresh:
            yield WindowUpdate(indicator, dims, 0, year_start(year), acc.total, acc.count, False, 0)
    yield from fresh.values()


def _scanning_flush(state: WindowState) -> list[WindowUpdate]:
    """The flush as a full scan of the open windows (the implementation before the indexes)."""
    state.settle()
    updates = []
    for key in sorted(state.touched):
        acc = state.open.get(key) or state.closed_days[key]
        updates.append(WindowUpdate(*key, acc.total, acc.count, key in state.closed_days, acc.revision))
    for indicator, dims, year in sorted(state.touched_ytd):
        acc = state.ytd[(indicator, dims, year)]
        updates.append(WindowUpdate(indicator, dims, 0, year_start(year), acc.total, acc.count, False, 0))
    state.touched.clear()
    state.touched_ytd.clear()
    for key in sorted(k for k in state.open if state.watermark >= k[3] + k[2] + state.grace_seconds):
        acc = state.open.pop(key)
        if key[2] == DAY and key in state.closed_days:  # the one change: late readings kept
            acc.merge(state.closed_days[key].nanos, state.closed_days[key].count)
        updates.append(WindowUpdate(*key, acc.total, acc.count, True, acc.revision))
        if key[2] == DAY:
            state.closed_days[key] = acc
    return updates


def _scanning_derive(updates: list[WindowUpdate], state: WindowState) -> list[WindowUpdate]:
    """The derived indicators from a full scan, by their formulas (docs/indicators.md)."""
    sums: dict[tuple[str, str, int, int, str], list] = {}  # type: ignore[type-arg]
    for w in sorted(_scanned(updates, state), key=lambda w: w.dimensions):
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


def _contribution(event_id: str, minutes: float, commune: str, kind: int, value: float) -> Contribution:
    at = T0 + timedelta(minutes=minutes)
    place = ("commune", commune)
    measures = [
        Measure("energy_consumed_kwh", (("carrier", "electricity"), place, ("sector", "residential")), value),
        Measure("energy_consumed_kwh", (("carrier", "gas"), place, ("sector", "tertiary")), value / 3),
        Measure("renewable_production_kwh", (("commune", commune),), value * 0.7),
        Measure("passenger_km", (("commune", commune), ("mode", "bus")), value),
        Measure("passenger_km", (("commune", commune), ("mode", "bike")), value / 7),
        Measure("environment_value", (place, ("quantity", "pm25"), ("station", "s1")), value * 9),
    ]  # fmt: skip
    return Contribution(event_id, "p", at, (measures[kind], measures[(kind + 1) % len(measures)]))


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


@settings(max_examples=150, deadline=None)
@given(events, st.integers(0, 119))
def test_indexed_flush_and_derive_equal_a_full_scan(items: list, restore_at: int) -> None:  # type: ignore[type-arg]
    indexed = WindowState((60, 900, 3600, DAY), grace_seconds=300)
    scanning = WindowState((60, 900, 3600, DAY), grace_seconds=300)
    got: list[WindowUpdate] = []
    expected: list[WindowUpdate] = []
    batch: list[Contribution] = []
    for n, (event_id, minutes, commune, kind, value, flush) in enumerate(items):
        batch.append(_contribution(f"e{event_id}", minutes, commune, kind, value))
        if flush or n == len(items) - 1:
            indexed.add_all(batch)
            scanning.add_all(batch)
            batch = []
            updates = indexed.flush()
            got += updates + derive(updates, indexed, WHO)
            updates = _scanning_flush(scanning)
            expected += updates + _scanning_derive(updates, scanning)
            if n >= restore_at:  # a restart: the indexes come back from the checkpoint
                indexed = decode(encode(PartitionState(indexed)), 0).windows
                scanning = decode(encode(PartitionState(scanning)), 0).windows
                restore_at = len(items)
    assert got == expected
    seen.update(u.indicator for u in got if u.final)
    seen.update(f"revision {u.indicator}" for u in got if u.revision)


seen: set[str] = set()


def test_the_random_sequences_reached_every_path() -> None:
    # Runs after the property above (file order): closed windows, corrected days and every
    # derived indicator were compared, not only open windows.
    assert {"renewable_share_ratio", "modal_share_ratio", "who_exceedance"} <= seen
    assert {"revision energy_consumed_kwh", "revision renewable_share_ratio"} <= seen
