"""Derived indicators: ratios of the window sums a partition holds, computed at each flush.

Readings are partitioned by commune (schemas/partition_key.py), so one partition holds every
series of a commune whole, and a commune-level ratio is a pure function of its state:
- ``renewable_share_ratio`` {commune}: local renewable production / energy consumed, all
  sectors and carriers, over the same window;
- ``modal_share_ratio`` {commune, mode}: passenger-km of a mode / passenger-km of all modes;
- ``who_exceedance`` {commune, station, quantity}: 1 when a day's mean of a pollutant is
  above the WHO 2021 24-hour guideline, else 0 (a year's sum = exceedance days).
A ratio is republished whenever one of its terms changes; it is final when every term is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from streams.enrichment import Dimensions
from streams.window_state import DAY, WindowState, WindowUpdate, year_start


@dataclass
class _Term:
    total: float = 0.0
    final: bool = True
    revision: int = 0

    def add(self, total: float, final: bool, revision: int) -> None:
        self.total += total
        self.final = self.final and final
        self.revision = max(self.revision, revision)


def _current(updates: list[WindowUpdate], state: WindowState) -> Iterable[WindowUpdate]:
    """Every window of the state, as the flush just left it (closed ones from ``updates``)."""
    fresh = {(u.indicator, u.dimensions, u.size, u.start): u for u in updates}
    for key, acc in state.open.items():
        if key not in fresh:
            yield WindowUpdate(*key, acc.total, acc.count, False, acc.revision)
    for key, acc in state.closed_days.items():
        if key not in fresh:
            yield WindowUpdate(*key, acc.total, acc.count, True, acc.revision)
    for (indicator, dims, year), acc in state.ytd.items():
        start = year_start(year)
        if (indicator, dims, 0, start) not in fresh:
            yield WindowUpdate(indicator, dims, 0, start, acc.total, acc.count, False, 0)
    yield from fresh.values()


def _dim(dims: Dimensions, name: str) -> str | None:
    for key, value in dims:
        if key == name:
            return value
    return None


def derive(
    updates: list[WindowUpdate], state: WindowState, who_daily: Mapping[str, float]
) -> list[WindowUpdate]:
    """The derived updates that ``updates`` (one flush of ``state``) call for."""
    shares: set[tuple[str, int, int]] = set()  # commune, size, start
    modal: set[tuple[str, int, int]] = set()
    derived: list[WindowUpdate] = []
    for u in updates:
        commune = _dim(u.dimensions, "commune")
        if commune is None:
            continue
        if u.indicator in ("energy_consumed_kwh", "renewable_production_kwh"):
            shares.add((commune, u.size, u.start))
        elif u.indicator == "passenger_km":
            modal.add((commune, u.size, u.start))
        elif u.indicator == "environment_value" and u.size == DAY and u.count:
            guideline = who_daily.get(_dim(u.dimensions, "quantity") or "")
            if guideline is not None:
                exceeded = 1.0 if u.total / u.count > guideline else 0.0
                derived.append(
                    WindowUpdate(
                        "who_exceedance", u.dimensions, u.size, u.start, exceeded, 1, u.final, u.revision
                    )
                )
    if not shares and not modal:
        return derived
    consumed: dict[tuple[str, int, int], _Term] = {}
    produced: dict[tuple[str, int, int], _Term] = {}
    pkm: dict[tuple[str, int, int], dict[str, _Term]] = {}
    for w in _current(updates, state):
        commune = _dim(w.dimensions, "commune")
        if commune is None:
            continue
        slot = (commune, w.size, w.start)
        if slot in shares and w.indicator == "energy_consumed_kwh":
            consumed.setdefault(slot, _Term()).add(w.total, w.final, w.revision)
        elif slot in shares and w.indicator == "renewable_production_kwh":
            produced.setdefault(slot, _Term()).add(w.total, w.final, w.revision)
        elif slot in modal and w.indicator == "passenger_km":
            mode = _dim(w.dimensions, "mode") or "unknown"
            pkm.setdefault(slot, {}).setdefault(mode, _Term()).add(w.total, w.final, w.revision)
    for slot in sorted(shares):
        cons, prod = consumed.get(slot), produced.get(slot, _Term())
        if cons is None or cons.total <= 0:
            continue  # no consumption measured: the share is undefined, not infinite
        commune, size, start = slot
        final = cons.final and prod.final
        revision = max(cons.revision, prod.revision)
        dims: Dimensions = (("commune", commune),)
        derived.append(
            WindowUpdate(
                "renewable_share_ratio", dims, size, start, prod.total / cons.total, 1, final, revision
            )
        )
    for slot in sorted(modal):
        modes = pkm.get(slot, {})
        everything = sum(t.total for t in modes.values())
        if everything <= 0:
            continue
        commune, size, start = slot
        final = all(t.final for t in modes.values())
        revision = max(t.revision for t in modes.values())
        for mode, term in sorted(modes.items()):
            mode_dims: Dimensions = (("commune", commune), ("mode", mode))
            derived.append(
                WindowUpdate(
                    "modal_share_ratio", mode_dims, size, start, term.total / everything, 1, final, revision
                )
            )
    return derived
