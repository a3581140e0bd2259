"""Derived indicators: ratios of the window sums a partition holds, computed at each flush.

Readings are partitioned by commune (schemas/partition_key.py), so one partition holds every
series of a commune whole, and a commune-level ratio is a pure function of its state:
- ``renewable_share_ratio`` {commune}: local renewable production / energy consumed, all
  sectors and carriers, over the same window;
- ``modal_share_ratio`` {commune, mode}: passenger-km of a mode / passenger-km of all modes;
- ``who_exceedance`` {commune, station, quantity}: 1 when a day's mean of a pollutant is
  above the WHO 2021 24-hour guideline, else 0 (a year's sum = exceedance days);
- ``heating_degree_days`` {commune, station}: a day's unified degree days (DJU) at a weather
  station, base 18 °C: 18 minus the day's mean temperature when below 18, else 0 (a month's or a
  year's sum is its DJU, by which French energy managers compare heating between years);
- ``emissions_per_inhabitant_kgco2e`` and ``energy_consumed_per_inhabitant_kwh`` {commune}:
  the commune's emissions (energy, mobility and EV charging, as the territory's total counts
  them) or energy consumed over a day, a month or the year to date, per inhabitant (INSEE
  population of reference/data/communes.csv): figures a person compares between communes of
  different sizes, and a month's between years.
A ratio is republished whenever one of its terms changes; it is final when every term is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from operator import itemgetter

from schemas.local_calendar import DAY, MONTH
from streams.indicators.enrichment import Dimensions
from streams.indicators.window_state import WindowKey, WindowState, WindowUpdate, commune_of

# Per inhabitant: the indicator published -> the indicators summed (as sinks/territory_rollup.py
# sums the territory's emissions). Days, local months and the year to date only: a minute per
# inhabitant says nothing, and each would be one more update per reading.
PER_INHABITANT: dict[str, tuple[str, ...]] = {
    "emissions_per_inhabitant_kgco2e": (
        "emissions_kgco2e",
        "mobility_emissions_kgco2e",
        "ev_charging_emissions_kgco2e",
    ),
    "energy_consumed_per_inhabitant_kwh": ("energy_consumed_kwh",),
}
PER_INHABITANT_SIZES = frozenset({DAY, MONTH, 0})
DJU_BASE_CELSIUS = 18.0  # the base of unified degree days (degrés-jours unifiés) for heating
_DIVIDED = {term: name for name, terms in PER_INHABITANT.items() for term in terms}
# The window sums the ratios are made of.
_TERMS = frozenset({"energy_consumed_kwh", "renewable_production_kwh", "passenger_km", *_DIVIDED})


@dataclass
class _Term:
    total: float = 0.0
    final: bool = True
    revision: int = 0

    def add(self, total: float, final: bool, revision: int) -> None:
        self.total += total
        self.final = self.final and final
        self.revision = max(self.revision, revision)


Slot = tuple[str, int, int]  # commune, size, start


Term = tuple[Dimensions, float, bool, int]  # a window's dimensions, total, final, revision


def _terms(
    indicator: str,
    slot: Slot,
    state: WindowState,
    fresh: dict[WindowKey, WindowUpdate],
    flushed: dict[tuple[str, Slot], list[Term]],
) -> list[Term]:
    """(dimensions, total, final, revision) of every window of ``indicator`` in ``slot``, as the
    flush just left them (the state's, and those the flush emitted from ``fresh``), sorted
    by dimensions: a float sum over them adds up in one order, whatever the order in which
    the state met its windows."""
    commune, size, start = slot
    key = (indicator, commune, size, start)
    terms = flushed.get((indicator, slot), [])[:]
    if size == 0:
        for ykey in state.ytd_by_slot.get(key, ()):
            if (ykey[0], ykey[1], 0, start) not in fresh:
                acc = state.ytd[ykey]
                terms.append((ykey[1], acc.total, False, 0))
    else:
        for wkey in state.open_by_slot.get(key, ()):
            if wkey not in fresh:
                acc = state.open[wkey]
                terms.append((wkey[1], acc.total, False, acc.revision))
        for wkey, acc in state.closed_in_slot(key):
            if wkey not in fresh:
                terms.append((wkey[1], acc.total, True, acc.revision))
    terms.sort(key=itemgetter(0))
    return terms


def _dim(dims: Dimensions, name: str) -> str | None:
    for key, value in dims:
        if key == name:
            return value
    return None


def derive(
    updates: list[WindowUpdate],
    state: WindowState,
    who_daily: Mapping[str, float],
    populations: Mapping[str, int] | None = None,
) -> list[WindowUpdate]:
    """The derived updates that ``updates`` (one flush of ``state``) call for; ``populations``
    (inhabitants by commune) for the figures per inhabitant."""
    shares: set[tuple[str, int, int]] = set()  # commune, size, start
    modal: set[tuple[str, int, int]] = set()
    per_inhabitant: set[tuple[str, Slot]] = set()  # indicator published, slot
    derived: list[WindowUpdate] = []
    for u in updates:
        commune = commune_of(u.dimensions)
        if commune is None:
            continue
        if populations and u.indicator in _DIVIDED and u.size in PER_INHABITANT_SIZES:
            per_inhabitant.add((_DIVIDED[u.indicator], (commune, u.size, u.start)))
        if u.indicator in ("energy_consumed_kwh", "renewable_production_kwh"):
            shares.add((commune, u.size, u.start))
        elif u.indicator == "passenger_km":
            modal.add((commune, u.size, u.start))
        elif u.indicator == "environment_value" and u.size == DAY and u.count:
            if _dim(u.dimensions, "quantity") == "temperature":
                station = (("commune", commune), ("station", _dim(u.dimensions, "station") or ""))
                degrees = max(0.0, DJU_BASE_CELSIUS - u.total / u.count)
                derived.append(
                    WindowUpdate(
                        "heating_degree_days", station, u.size, u.start, degrees, 1, u.final, u.revision
                    )
                )
                continue
            guideline = who_daily.get(_dim(u.dimensions, "quantity") or "")
            if guideline is not None:
                exceeded = 1.0 if u.total / u.count > guideline else 0.0
                derived.append(
                    WindowUpdate(
                        "who_exceedance", u.dimensions, u.size, u.start, exceeded, 1, u.final, u.revision
                    )
                )
    if not shares and not modal and not per_inhabitant:
        return derived
    # The windows of the slots concerned: the state's (indexed by slot), then the flush's own
    # updates, which are the newest value of what they cover (the last one per window).
    fresh = {(u.indicator, u.dimensions, u.size, u.start): u for u in updates}
    flushed: dict[tuple[str, Slot], list[Term]] = {}
    for u in fresh.values():
        if u.indicator in _TERMS:
            commune = commune_of(u.dimensions)
            if commune is not None:
                flushed.setdefault((u.indicator, (commune, u.size, u.start)), []).append(
                    (u.dimensions, u.total, u.final, u.revision)
                )

    def summed(indicator: str, slot: Slot) -> _Term | None:
        terms = _terms(indicator, slot, state, fresh, flushed)
        if not terms:
            return None
        found = _Term()
        for _, total, final, revision in terms:
            found.add(total, final, revision)
        return found

    consumed = {slot: summed("energy_consumed_kwh", slot) for slot in shares}
    produced = {slot: summed("renewable_production_kwh", slot) for slot in shares}
    pkm: dict[Slot, dict[str, _Term]] = {}
    for slot in modal:
        terms = _terms("passenger_km", slot, state, fresh, flushed)
        for series, total, final, revision in terms:
            mode = _dim(series, "mode") or "unknown"
            pkm.setdefault(slot, {}).setdefault(mode, _Term()).add(total, final, revision)
    for slot in sorted(shares):
        cons, prod = consumed.get(slot), produced.get(slot) or _Term()
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
    for name, slot in sorted(per_inhabitant):
        inhabitants = (populations or {}).get(slot[0], 0)
        parts = [t for t in (summed(term, slot) for term in PER_INHABITANT[name]) if t is not None]
        if not parts or inhabitants <= 0:
            continue  # a commune without a population is not divided by zero
        commune, size, start = slot
        total = sum(t.total for t in parts)
        final, revision = all(t.final for t in parts), max(t.revision for t in parts)
        derived.append(
            WindowUpdate(name, (("commune", commune),), size, start, total / inhabitants, 1, final, revision)
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
