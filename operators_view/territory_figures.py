"""The territory's figures as the page shows them, shaped from InfluxDB rows (pure).

A row is one Flux record as plain data: ``measurement``, ``time``, ``value`` and its tags
(``window``, ``commune``, ``sector``, ``mode``, ``station``, ``quantity``, ``producer``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from operators_view.flux_queries import EMISSIONS, ENERGY

Row = Mapping[str, Any]

# Emissions without a sector tag are shown under the activity they come from.
PSEUDO_SECTOR = {"mobility_emissions_kgco2e": "mobility", "ev_charging_emissions_kgco2e": "ev_charging"}


@dataclass
class Breakdown:
    """Emissions (all three measured sources) and energy of one commune or sector."""

    key: str
    label: str
    emissions_hour_kgco2e: float = 0.0
    emissions_today_kgco2e: float = 0.0
    energy_hour_kwh: float = 0.0
    energy_today_kwh: float = 0.0
    emissions_hourly_kgco2e: list[float] = field(default_factory=list)  # today, hour 0 to now


@dataclass(frozen=True)
class EmissionsAndEnergy:
    totals: Breakdown
    by_commune: list[Breakdown]
    by_sector: list[Breakdown]


def _hour_index(moment: datetime, day: datetime) -> int:
    return int((moment - day) / timedelta(hours=1))


def emissions_and_energy(
    rows: Iterable[Row], day: datetime, hour: datetime, commune_names: Mapping[str, str]
) -> EmissionsAndEnergy:
    """Ranked by today's emissions: per commune, per sector, and the territory's totals."""
    hours = _hour_index(hour, day) + 1
    communes: dict[str, Breakdown] = {}
    sectors: dict[str, Breakdown] = {}
    totals = Breakdown(key="territory", label="", emissions_hourly_kgco2e=[0.0] * hours)

    def entry(table: dict[str, Breakdown], key: str, label: str) -> Breakdown:
        if key not in table:
            table[key] = Breakdown(key=key, label=label, emissions_hourly_kgco2e=[0.0] * hours)
        return table[key]

    for row in rows:
        measurement, value = str(row["measurement"]), float(row["value"])
        commune = str(row.get("commune") or "")
        sector = str(row.get("sector") or PSEUDO_SECTOR.get(measurement, "other"))
        targets = [totals]
        if commune:
            targets.append(entry(communes, commune, commune_names.get(commune, commune)))
        targets.append(entry(sectors, sector, sector))
        index = _hour_index(row["time"], day)
        for target in targets:
            if measurement == ENERGY:
                if row.get("window") == "1d":
                    target.energy_today_kwh += value
                elif index == hours - 1:
                    target.energy_hour_kwh += value
            elif measurement in EMISSIONS:
                if row.get("window") == "1d":
                    target.emissions_today_kgco2e += value
                elif 0 <= index < hours:
                    target.emissions_hourly_kgco2e[index] += value
                    if index == hours - 1:
                        target.emissions_hour_kgco2e += value

    def ranked(table: dict[str, Breakdown]) -> list[Breakdown]:
        return sorted(table.values(), key=lambda b: (-b.emissions_today_kgco2e, -b.energy_today_kwh, b.key))

    return EmissionsAndEnergy(totals=totals, by_commune=ranked(communes), by_sector=ranked(sectors))


@dataclass(frozen=True)
class ModeFigures:
    mode: str
    passenger_km_today: float
    modal_share: float | None  # of today's passenger-km, all modes
    emissions_today_kgco2e: float
    passenger_km_hourly: list[float]


def mobility_by_mode(rows: Iterable[Row], day: datetime, hour: datetime) -> list[ModeFigures]:
    """Today's passenger-km, modal share and emissions per mode, largest share first."""
    hours = _hour_index(hour, day) + 1
    pkm: dict[str, float] = {}
    emissions: dict[str, float] = {}
    hourly: dict[str, list[float]] = {}
    for row in rows:
        mode, value = str(row.get("mode") or "other"), float(row["value"])
        hourly.setdefault(mode, [0.0] * hours)
        if row.get("window") == "1d":
            target = pkm if row["measurement"] == "passenger_km" else emissions
            target[mode] = target.get(mode, 0.0) + value
        elif row["measurement"] == "passenger_km" and 0 <= (index := _hour_index(row["time"], day)) < hours:
            hourly[mode][index] += value
    total = sum(pkm.values())
    figures = [
        ModeFigures(
            mode=mode,
            passenger_km_today=pkm.get(mode, 0.0),
            modal_share=pkm.get(mode, 0.0) / total if total else None,
            emissions_today_kgco2e=emissions.get(mode, 0.0),
            passenger_km_hourly=hourly[mode],
        )
        for mode in hourly
    ]
    return sorted(figures, key=lambda f: (-f.passenger_km_today, f.mode))


@dataclass(frozen=True)
class Trajectory:
    """The territory's year to date against its paths (sinks/territory_rollup.py): gross
    emissions to -30 % in 2030, net emissions (minus the declared sinks) to zero in 2040."""

    emissions_kgco2e: float | None
    target_kgco2e: float | None
    ratio: float | None  # below 1: on track
    sequestration_kgco2e: float | None = None
    net_emissions_kgco2e: float | None = None
    net_target_kgco2e: float | None = None
    net_ratio: float | None = None  # none once the net target is zero (2040)


def trajectory(rows: Iterable[Row]) -> Trajectory:
    latest = {str(row["measurement"]): float(row["value"]) for row in rows}
    return Trajectory(
        emissions_kgco2e=latest.get("territory_emissions_kgco2e"),
        target_kgco2e=latest.get("territory_trajectory_target_kgco2e"),
        ratio=latest.get("territory_trajectory_ratio"),
        sequestration_kgco2e=latest.get("territory_sequestration_kgco2e"),
        net_emissions_kgco2e=latest.get("territory_net_emissions_kgco2e"),
        net_target_kgco2e=latest.get("territory_net_trajectory_target_kgco2e"),
        net_ratio=latest.get("territory_net_trajectory_ratio"),
    )


@dataclass(frozen=True)
class StationFigures:
    station: str
    commune: str
    quantity: str
    unit: str
    hour_mean: float | None
    day_mean: float | None
    who_guideline: float | None  # 24-hour guideline, same unit; None: not assessed (O3)
    above_guideline: bool | None
    exceedance_days: int


def air_quality(
    rows: Iterable[Row],
    exceedances: Iterable[Row],
    guidelines: Mapping[str, float],
    units: Mapping[str, str],
    commune_names: Mapping[str, str],
) -> list[StationFigures]:
    """Per station and pollutant: latest hourly mean, today's mean against the WHO guideline,
    exceedance days this year; stations above their guideline first."""
    means: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (str(row.get("station") or "?"), str(row.get("quantity") or "?"))
        entry = means.setdefault(key, {"commune": str(row.get("commune") or "")})
        entry["hour" if row.get("window") == "1h" else "day"] = float(row["value"])
    days = {
        (str(row.get("station") or "?"), str(row.get("quantity") or "?")): round(float(row["value"]))
        for row in exceedances
    }
    out = []
    for (station, quantity), entry in means.items():
        guideline = guidelines.get(quantity)
        day_mean = entry.get("day")
        out.append(
            StationFigures(
                station=station,
                commune=commune_names.get(entry["commune"], entry["commune"]),
                quantity=quantity,
                unit=units.get(quantity, ""),
                hour_mean=entry.get("hour"),
                day_mean=day_mean,
                who_guideline=guideline,
                above_guideline=day_mean > guideline
                if guideline is not None and day_mean is not None
                else None,
                exceedance_days=days.get((station, quantity), 0),
            )
        )
    return sorted(out, key=lambda s: (not s.above_guideline, -s.exceedance_days, s.station, s.quantity))


@dataclass(frozen=True)
class ProducerFreshness:
    producer: str
    last_event_age_seconds: float | None  # now - the latest event time received from it
    completeness: float | None  # this hour, mean over its communes


def producer_freshness(
    last_events: Iterable[Row], completeness: Iterable[Row], now: datetime
) -> dict[str, ProducerFreshness]:
    """Freshness and completeness per producer, from the indicator stage's activity series."""
    ages = {str(r.get("producer")): now.timestamp() - float(r["value"]) for r in last_events}
    complete = {str(r.get("producer")): float(r["value"]) for r in completeness}
    return {
        producer: ProducerFreshness(producer, ages.get(producer), complete.get(producer))
        for producer in sorted(ages.keys() | complete.keys())
    }
