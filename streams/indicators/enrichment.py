"""Enrichment: what one validated reading contributes to the indicators, with its factor.

A pure function of the event and the reference data. An event for which no emission factor
applies is refused with that reason (it must be dead-lettered, never counted as zero).
Formulas and units are documented in docs/indicators.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from pydantic import BaseModel

from reference.loader import ReferenceData
from schemas.energy import EnergyReading
from schemas.environment import EnvironmentReading
from schemas.mobility import (
    BikeStationStatus,
    BikeTrip,
    CarsharingTrip,
    EvChargingSession,
    ParkingOccupancy,
    TrafficCount,
    TransitTrip,
    TransitValidation,
)
from schemas.units import KWH_PER_UNIT

Dimensions = tuple[tuple[str, str], ...]


class Measure(NamedTuple):
    """One term of one indicator: ``value`` added to the series (indicator, dimensions)."""

    indicator: str
    dimensions: Dimensions
    value: float


class Contribution(NamedTuple):
    """What one reading adds: its measures, at its event time (a tuple: one per reading, built
    and read hundreds of thousands of times a second, cheaper than a frozen dataclass)."""

    event_id: str
    producer_id: str
    event_time: datetime
    measures: tuple[Measure, ...]
    # Whose progress the reading moves (window_state.py): its producer's, or for readings
    # placed at their interval's start, its producer's interval readings' own. Those trail its
    # index readings by an interval: with one progress, every interval reading of a producer
    # sending both kinds (a distributor's meters) came after its windows closed, late.
    stream: str


_INTERVAL_STREAMS: dict[str, str] = {}


def interval_stream(producer: str) -> str:
    """The progress stream of ``producer``'s readings placed at their interval's start."""
    stream = _INTERVAL_STREAMS.get(producer)
    if stream is None:
        stream = _INTERVAL_STREAMS[producer] = f"{producer} intervals"
    return stream


@dataclass(frozen=True, slots=True)
class NoFactor:
    """Why a reading cannot be counted: the dead-letter reason."""

    path: str
    message: str


def _dims(**items: str) -> Dimensions:
    return _sorted_dims(tuple(items.items()))


@lru_cache(maxsize=65536)
def _sorted_dims(items: Dimensions) -> Dimensions:
    # Few distinct dimension sets, each built once per reading: memoised.
    return tuple(sorted(items))


def _factor(ref: ReferenceData, category: str, key: str, year: int, path: str) -> float | NoFactor:
    factor = ref.factor(category, key, year)
    if factor is None:
        return NoFactor(path, f"no {category} emission factor for {key!r} valid in {year}")
    return factor.value


Terms = tuple[Dimensions, float] | NoFactor  # a series' dimensions and its factor, or why not


class _Memo:
    """Factors and dimensions per (carrier or mode, sector, commune, year), for one version of
    the reference data: a partition sees a handful of combinations, each reading one of them."""

    def __init__(self, ref: ReferenceData | None = None) -> None:
        self.ref = ref
        self.energy: dict[tuple[str, str, str, int], Terms] = {}
        self.modes: dict[tuple[str, str, str, int], Terms] = {}
        self.solar: dict[str, Dimensions] = {}
        self.environment: dict[tuple[str, str, str], Dimensions] = {}


_memo = _Memo()


def _memo_of(ref: ReferenceData) -> _Memo:
    global _memo
    if ref is not _memo.ref:  # new reference data: start again (the old one is released)
        _memo = _Memo(ref)
    return _memo


def _energy_terms(
    ref: ReferenceData, carrier: str, sector: str, commune: str, year: int
) -> tuple[Dimensions, float] | NoFactor:
    memo = _memo_of(ref).energy
    key = (carrier, sector, commune, year)
    found = memo.get(key)
    if found is None:
        carrier, sector = str(carrier), str(sector)  # the enums' values, for names and messages
        factor = _factor(ref, "energy", carrier, year, "carrier")
        dims = _dims(commune=commune, sector=sector, carrier=carrier)
        found = memo[key] = factor if isinstance(factor, NoFactor) else (dims, factor)
    return found


def energy_measures(event: EnergyReading, kwh: float, ref: ReferenceData) -> tuple[Measure, ...] | NoFactor:
    """Consumption and emissions of an energy quantity already turned into kWh."""
    data = event.__dict__
    carrier, commune = data["carrier"], data["commune"]
    if carrier == "solar_pv":
        solar = _memo_of(ref).solar
        dims = solar.get(commune)
        if dims is None:
            dims = solar[commune] = _dims(commune=commune)
        return (Measure("renewable_production_kwh", dims, kwh),)
    terms = _energy_terms(ref, carrier, data["sector"], commune, data["event_time"].year)
    if isinstance(terms, NoFactor):
        return terms
    dims, factor = terms
    return (
        Measure("energy_consumed_kwh", dims, kwh),
        Measure("emissions_kgco2e", dims, kwh * factor),
    )


def _mode_measures(
    ref: ReferenceData, commune: str, mode: str, factor_key: str, pkm: float, year: int
) -> tuple[Measure, ...] | NoFactor:
    memo = _memo_of(ref).modes
    key = (commune, mode, factor_key, year)
    terms = memo.get(key)
    if terms is None:
        factor = _factor(ref, "mobility", factor_key, year, "kind")
        terms = memo[key] = (
            factor if isinstance(factor, NoFactor) else (_dims(commune=commune, mode=mode), factor)
        )
    if isinstance(terms, NoFactor):
        return terms
    dims, factor = terms
    return (Measure("passenger_km", dims, pkm), Measure("mobility_emissions_kgco2e", dims, pkm * factor))


def mobility_measures(event: BaseModel, ref: ReferenceData) -> tuple[Measure, ...] | NoFactor:
    year = event.__dict__["event_time"].year
    commune = event.__dict__["commune"]
    if isinstance(event, BikeTrip):
        mode = "ebike" if event.electric else "bike"
        return _mode_measures(ref, commune, mode, mode, event.distance_km, year)
    if isinstance(event, TransitTrip):
        # Bus factors are per passenger-km; the sea bus (electric-solar) has no ADEME factor:
        # its emissions come from its metered energy with the electricity factor.
        pkm = event.distance_km * event.passengers
        if event.mode.value == "bus":
            return _mode_measures(ref, commune, "bus", "bus", pkm, year)
        if event.energy_kwh is None:
            return NoFactor(
                "energy_kwh", "a sea-bus trip needs its metered energy_kwh to count its emissions"
            )
        factor = _factor(ref, "energy", "electricity", year, "energy_kwh")
        if isinstance(factor, NoFactor):
            return factor
        dims = _dims(commune=commune, mode="sea_bus")
        return (
            Measure("passenger_km", dims, pkm),
            Measure("mobility_emissions_kgco2e", dims, event.energy_kwh * factor),
        )
    if isinstance(event, CarsharingTrip):
        key = "car_electric" if event.electric else "car_petrol"
        return _mode_measures(ref, commune, "carsharing", key, event.distance_km, year)
    if isinstance(event, EvChargingSession):
        device = ref.devices.get(event.device_id)
        if device is not None and device.metered_site:
            # Behind a site's meter, which counts this electricity and its emissions already:
            # its own figure, outside the territory's sums (docs/indicators.md, perimeter).
            return (Measure("ev_charging_behind_meter_kwh", _dims(commune=commune), event.energy_kwh),)
        factor = _factor(ref, "energy", "electricity", year, "energy_kwh")
        if isinstance(factor, NoFactor):
            return factor
        dims = _dims(commune=commune)
        return (
            Measure("ev_charging_kwh", dims, event.energy_kwh),
            Measure("ev_charging_emissions_kgco2e", dims, event.energy_kwh * factor),
        )
    if isinstance(event, TransitValidation):
        return (
            Measure("transit_validations", _dims(commune=commune, mode=event.mode.value), event.passengers),
        )
    if isinstance(event, TrafficCount):
        return (
            Measure("traffic_vehicles", _dims(commune=commune, counter=event.device_id), event.intensity),
        )
    if isinstance(event, ParkingOccupancy):
        ratio = event.occupied_spot_number / event.total_spot_number
        return (Measure("parking_occupancy_ratio", _dims(commune=commune, car_park=event.device_id), ratio),)
    if isinstance(event, BikeStationStatus):
        ratio = event.available_bike_number / event.total_slot_number
        return (Measure("bike_availability_ratio", _dims(commune=commune, station=event.device_id), ratio),)
    return NoFactor("kind", f"no indicator is defined for {type(event).__name__}")


def environment_measures(event: EnvironmentReading) -> tuple[Measure, ...]:
    data = event.__dict__
    key = (data["commune"], data["sensor_id"], data["quantity"])
    known = _memo.environment
    dims = known.get(key)
    if dims is None:
        dims = known[key] = _dims(
            commune=event.commune, station=event.sensor_id, quantity=event.quantity.value
        )
    return (Measure("environment_value", dims, data["value"]),)


def enrich(event: BaseModel, ref: ReferenceData, kwh: float | None = None) -> Contribution | NoFactor:
    """The measures a validated event adds; ``kwh`` is the consumption of an index reading
    (derived upstream from successive indexes), ignored for interval readings."""
    data = event.__dict__
    at = data["event_time"]
    stream = producer = data["producer_id"]
    if isinstance(event, EnergyReading):
        # event.quantity_kwh, without the property's two calls
        quantity = data["quantity"] * KWH_PER_UNIT[data["unit"]] if data["kind"] == "interval" else kwh
        if data["kind"] == "interval" and data["interval_start"] is not None:
            # Consumed over [interval_start, event_time): it belongs to the window where the
            # interval starts (the hour 00:45-01:00 is hour 00, not 01).
            at = data["interval_start"]
            stream = interval_stream(producer)
        if quantity is None:
            return NoFactor("quantity", "an index reading needs the previous index to give a consumption")
        measures: tuple[Measure, ...] | NoFactor = energy_measures(event, quantity, ref)
    elif isinstance(event, EnvironmentReading):
        measures = environment_measures(event)
    else:
        measures = mobility_measures(event, ref)
    if isinstance(measures, NoFactor):
        return measures
    return Contribution(data["event_id"], producer, at, measures, stream)
