"""Plausibility rules: values a device of that kind cannot report, and unknown provenance.

Pure functions over a validated event and the reference data; each problem names the
field and the bound it crossed, so the producer can fix the device or the configuration.

They run once per event, hundreds of thousands of times a second
(bench/validation_throughput.py), so the bounds are prepared once per version of the
reference data (``rules_for``) and a message is only formatted for an actual problem.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from pydantic import BaseModel

from reference.loader import Device, ReferenceData
from schemas.dead_letter import FieldProblem
from schemas.device_topics import ROOT, parse_device_topic
from schemas.energy import EnergyReading
from schemas.environment import EnvironmentReading
from schemas.mobility import BikeTrip, CarsharingTrip, EvChargingSession, TransitTrip, TransitValidation
from schemas.units import KWH_PER_UNIT


def _problem(path: str, kind: str, message: str) -> FieldProblem:
    return FieldProblem(path=path, type=f"plausibility.{kind}", message=message)


class PlausibilityRules:
    """The plausibility rules of one version of the reference data."""

    def __init__(self, ref: ReferenceData) -> None:
        self.ref = ref
        bounds = ref.bounds
        self.max_payload_bytes = bounds.payload.max_bytes
        self._time = bounds.time
        self._energy = bounds.energy
        self._environment = bounds.environment.range
        self._mobility = bounds.mobility
        self._communes = ref.communes
        self._devices = ref.devices
        # (carrier, sector) -> kW, filled on first sight: a handful of pairs exist.
        self._power_limits: dict[tuple[str, str], float] = {}
        # The clock window of the last `now` seen (a batch shares one `now`), expressed in the tzinfo
        # of the last event checked: a UTC time parsed by pydantic keeps pydantic's own UTC tzinfo,
        # and comparing datetimes of one tzinfo object skips two utcoffset() calls per comparison.
        self._clock: datetime | None = None
        self._clock_tz: tzinfo | None = None
        self._earliest = self._latest = datetime.min
        # Event class -> its family's rules, resolved on first sight of the class.
        self._check_of_type: dict[type[BaseModel], Callable[[Any, list[FieldProblem]], None]] = {}

    def problems(
        self,
        event: BaseModel,
        family: str,
        device_field: str,
        now: datetime,
        mqtt_topic: str | None = None,
    ) -> list[FieldProblem]:
        """Every plausibility problem of a schema-valid event of ``family``; ``mqtt_topic`` is the
        topic the bridge received it on, which the broker only lets that device publish on."""
        data = event.__dict__
        problems = self.check_time(data["event_time"], now)
        device_id, commune = data[device_field], data["commune"]
        if mqtt_topic is not None and mqtt_topic != f"{ROOT}/{commune}/{family}/{device_id}":
            check_topic_claim(mqtt_topic, device_field, device_id, family, commune, problems)
        device = self._devices.get(device_id)
        # The common case, tested inline; check_provenance says what is wrong otherwise.
        if (
            device is None
            or device.family != family
            or device.commune != commune
            or commune not in self._communes
        ):
            self.check_provenance(device_field, device_id, family, commune, problems)
        check = self._check_of_type.get(type(event))
        if check is None:
            check = self._check_of_type[type(event)] = self._check_for(type(event))
        check(event, problems)
        return problems

    def _check_for(self, event_type: type[BaseModel]) -> Callable[[Any, list[FieldProblem]], None]:
        if issubclass(event_type, EnergyReading):
            return self.check_energy
        if issubclass(event_type, EnvironmentReading):
            return self.check_environment
        if issubclass(
            event_type, BikeTrip | TransitTrip | CarsharingTrip | EvChargingSession | TransitValidation
        ):
            return self.check_mobility
        return _no_rules

    def check_time(self, event_time: datetime, now: datetime) -> list[FieldProblem]:
        """A new list, with the problem of ``event_time`` if it is outside the clock window."""
        tz = event_time.tzinfo
        if now is not self._clock or tz is not self._clock_tz:
            earliest, latest = now - self._time.max_past, now + self._time.max_future
            self._earliest, self._latest = earliest.astimezone(tz), latest.astimezone(tz)
            self._clock, self._clock_tz = now, tz
        if self._earliest <= event_time <= self._latest:
            return []
        bounds = self._time
        if event_time > self._latest:
            message = (
                f"{event_time.isoformat()} is more than {bounds.max_future_seconds:.0f} s ahead of "
                f"the platform clock ({now.isoformat()}): check the device's clock"
            )
            return [_problem("event_time", "future", message)]
        message = f"{event_time.isoformat()} is more than {bounds.max_past_days:.0f} days old"
        return [_problem("event_time", "too_old", message)]

    def check_provenance(
        self, device_field: str, device_id: str, family: str, commune: str, problems: list[FieldProblem]
    ) -> None:
        """Append the problems of an unknown commune or device, or a device registered otherwise."""
        in_territory = commune in self._communes
        if not in_territory:
            problems.append(
                _problem(
                    "commune",
                    "outside_territory",
                    f"{commune} is not one of the 28 communes of the territory",
                )
            )
        device = self._devices.get(device_id)
        if device is None:
            problems.append(
                _problem(device_field, "unknown_device", f"{device_id!r} is not in the device registry")
            )
        elif device.family != family:
            problems.append(
                _problem(
                    device_field, "wrong_family", f"{device_id!r} is registered as a {device.family} device"
                )
            )
        elif device.commune != commune and in_territory:
            problems.append(
                _problem(
                    "commune", "registry_mismatch", f"{device_id!r} is registered in commune {device.commune}"
                )
            )

    def check_energy(self, event: EnergyReading, problems: list[FieldProblem]) -> None:
        """Append the problem of an index or a mean power beyond what the meter can report."""
        bounds = self._energy
        kwh = event.quantity * KWH_PER_UNIT[event.unit]  # event.quantity_kwh, one call less
        if event.kind == "index":
            if kwh > bounds.max_index_kwh:
                problems.append(
                    _problem(
                        "quantity",
                        "index_too_large",
                        f"index {kwh:.0f} kWh exceeds {bounds.max_index_kwh:.0f}",
                    )
                )
            return
        assert event.interval_start is not None  # guaranteed by the schema for interval readings
        device: Device | None = self._devices.get(event.meter_id)
        if device is not None and device.sector and device.sector != event.sector:
            # The meter's category is the registry's, whatever the payload declares.
            problems.append(
                _problem(
                    "sector",
                    "registry_mismatch",
                    f"{event.meter_id!r} is registered in sector {device.sector}",
                )
            )
            return
        hours = (event.event_time - event.interval_start).total_seconds() / 3600
        limit = self._power_limit(event.carrier, event.sector)
        power = kwh / hours
        if power > limit:
            problems.append(
                _problem(
                    "quantity",
                    "beyond_device",
                    f"{kwh:g} kWh in {hours * 60:g} min means {power:g} kW, beyond the {limit:g} kW a "
                    f"{event.carrier.value} meter in sector {event.sector.value} can deliver",
                )
            )

    def _power_limit(self, carrier: str, sector: str) -> float:
        key = (carrier, sector)
        limit = self._power_limits.get(key)
        if limit is None:
            # str() turns the vocabulary enums into their plain values.
            limit = self._power_limits[key] = self._energy.power_limit_kw(str(carrier), str(sector))
        return limit

    def check_environment(self, event: EnvironmentReading, problems: list[FieldProblem]) -> None:
        """Append the problem of a value outside what a sensor of that quantity can report."""
        low, high = self._environment[event.quantity]
        if not low <= event.value <= high:
            problems.append(
                _problem(
                    "value",
                    "beyond_device",
                    f"{event.quantity.value} = {event.value:g} {event.unit} is outside [{low:g}, {high:g}]",
                )
            )

    def check_mobility(self, event: BaseModel, problems: list[FieldProblem]) -> None:
        """Append the first distance, energy or passenger count beyond what the kind allows."""
        b = self._mobility
        if isinstance(event, BikeTrip) and event.distance_km > b.max_bike_trip_km:
            problems.append(
                _problem(
                    "distance_km",
                    "beyond_device",
                    f"a {event.distance_km:g} km bike trip exceeds {b.max_bike_trip_km:g} km",
                )
            )
        elif isinstance(event, TransitTrip | CarsharingTrip) and event.distance_km > b.max_trip_km:
            problems.append(
                _problem(
                    "distance_km", "beyond_device", f"{event.distance_km:g} km exceeds {b.max_trip_km:g} km"
                )
            )
        elif isinstance(event, EvChargingSession) and event.energy_kwh > b.max_charging_kwh:
            problems.append(
                _problem(
                    "energy_kwh",
                    "beyond_device",
                    f"{event.energy_kwh:g} kWh exceeds {b.max_charging_kwh:g} kWh per session",
                )
            )
        elif (
            isinstance(event, TransitValidation | TransitTrip)
            and event.passengers > b.max_passengers_per_event
        ):
            problems.append(
                _problem(
                    "passengers", "beyond_device", f"{event.passengers} exceeds {b.max_passengers_per_event}"
                )
            )


def check_topic_claim(
    mqtt_topic: str,
    device_field: str,
    device_id: str,
    family: str,
    commune: str,
    problems: list[FieldProblem],
) -> None:
    """Append what the payload claims beyond its device topic: the broker's ACLs authenticate the
    topic (a device publishes on its own only), so a payload naming another device, commune or
    family would be one device writing another's figures. A topic outside the device tree (a
    partner's own frames) claims nothing."""
    claimed = parse_device_topic(mqtt_topic)
    if claimed is None:
        return
    for path, payload_value, topic_value in (
        (device_field, device_id, claimed.device_id),
        ("commune", commune, claimed.commune),
        ("", family, claimed.family),
    ):
        if payload_value != topic_value:
            problems.append(
                _problem(
                    path,
                    "topic_mismatch",
                    f"{payload_value!r} is not the {topic_value!r} of MQTT topic {mqtt_topic!r}: "
                    "a device publishes its own readings only, on its own topic",
                )
            )


def _no_rules(event: BaseModel, problems: list[FieldProblem]) -> None:
    """Kinds with no plausibility bound of their own (a parking occupancy, a traffic count...)."""


_current: list[PlausibilityRules] = []


def rules_for(ref: ReferenceData) -> PlausibilityRules:
    """The rules of ``ref``, prepared once per version (a reload gives a new ReferenceData)."""
    if not _current or _current[0].ref is not ref:
        _current[:] = [PlausibilityRules(ref)]
    return _current[0]
