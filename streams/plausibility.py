"""Plausibility rules: values a device of that kind cannot report, and unknown provenance.

Pure functions over a validated event and the reference data; each problem names the
field and the bound it crossed, so the producer can fix the device or the configuration.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from reference.loader import ReferenceData
from schemas.dead_letter import FieldProblem
from schemas.energy import EnergyReading
from schemas.environment import EnvironmentReading
from schemas.mobility import BikeTrip, CarsharingTrip, EvChargingSession, TransitTrip, TransitValidation


def _problem(path: str, kind: str, message: str) -> FieldProblem:
    return FieldProblem(path=path, type=f"plausibility.{kind}", message=message)


def check_time(event_time: datetime, ref: ReferenceData, now: datetime) -> list[FieldProblem]:
    bounds = ref.bounds.time
    if event_time > now + bounds.max_future:
        return [
            _problem(
                "event_time",
                "future",
                f"{event_time.isoformat()} is more than {bounds.max_future_seconds:.0f} s ahead of "
                f"the platform clock ({now.isoformat()}): check the device's clock",
            )
        ]
    if event_time < now - bounds.max_past:
        return [
            _problem(
                "event_time",
                "too_old",
                f"{event_time.isoformat()} is more than {bounds.max_past_days:.0f} days old",
            )
        ]
    return []


def check_provenance(
    device_field: str, device_id: str, family: str, commune: str, ref: ReferenceData
) -> list[FieldProblem]:
    problems = []
    if commune not in ref.communes:
        problems.append(
            _problem(
                "commune", "outside_territory", f"{commune} is not one of the 28 communes of the territory"
            )
        )
    device = ref.devices.get(device_id)
    if device is None:
        problems.append(
            _problem(device_field, "unknown_device", f"{device_id!r} is not in the device registry")
        )
    elif device.family != family:
        problems.append(
            _problem(device_field, "wrong_family", f"{device_id!r} is registered as a {device.family} device")
        )
    elif device.commune != commune and commune in ref.communes:
        problems.append(
            _problem(
                "commune", "registry_mismatch", f"{device_id!r} is registered in commune {device.commune}"
            )
        )
    return problems


def check_energy(event: EnergyReading, ref: ReferenceData) -> list[FieldProblem]:
    bounds = ref.bounds.energy
    kwh = event.quantity_kwh
    if event.kind == "index":
        if kwh > bounds.max_index_kwh:
            return [
                _problem(
                    "quantity", "index_too_large", f"index {kwh:.0f} kWh exceeds {bounds.max_index_kwh:.0f}"
                )
            ]
        return []
    assert event.interval_start is not None  # guaranteed by the schema for interval readings
    device = ref.devices.get(event.meter_id)
    if device is not None and device.sector and device.sector != event.sector.value:
        # The meter's category is the registry's, whatever the payload declares.
        return [
            _problem(
                "sector", "registry_mismatch", f"{event.meter_id!r} is registered in sector {device.sector}"
            )
        ]
    hours = (event.event_time - event.interval_start).total_seconds() / 3600
    limit = bounds.power_limit_kw(event.carrier.value, event.sector.value)
    power = kwh / hours
    if power > limit:
        return [
            _problem(
                "quantity",
                "beyond_device",
                f"{kwh:g} kWh in {hours * 60:g} min means {power:g} kW, beyond the {limit:g} kW a "
                f"{event.carrier.value} meter in sector {event.sector.value} can deliver",
            )
        ]
    return []


def check_environment(event: EnvironmentReading, ref: ReferenceData) -> list[FieldProblem]:
    low, high = ref.bounds.environment.range[event.quantity.value]
    if not low <= event.value <= high:
        return [
            _problem(
                "value",
                "beyond_device",
                f"{event.quantity.value} = {event.value:g} {event.unit} is outside [{low:g}, {high:g}]",
            )
        ]
    return []


def check_mobility(event: BaseModel, ref: ReferenceData) -> list[FieldProblem]:
    b = ref.bounds.mobility
    if isinstance(event, BikeTrip) and event.distance_km > b.max_bike_trip_km:
        return [
            _problem(
                "distance_km",
                "beyond_device",
                f"a {event.distance_km:g} km bike trip exceeds {b.max_bike_trip_km:g} km",
            )
        ]
    if isinstance(event, TransitTrip | CarsharingTrip) and event.distance_km > b.max_trip_km:
        return [
            _problem("distance_km", "beyond_device", f"{event.distance_km:g} km exceeds {b.max_trip_km:g} km")
        ]
    if isinstance(event, EvChargingSession) and event.energy_kwh > b.max_charging_kwh:
        return [
            _problem(
                "energy_kwh",
                "beyond_device",
                f"{event.energy_kwh:g} kWh exceeds {b.max_charging_kwh:g} kWh per session",
            )
        ]
    if isinstance(event, TransitValidation | TransitTrip) and event.passengers > b.max_passengers_per_event:
        return [
            _problem(
                "passengers", "beyond_device", f"{event.passengers} exceeds {b.max_passengers_per_event}"
            )
        ]
    return []
