"""Mobility events: bike share, public transport, traffic counters, car parks, charging, car sharing.

One family, several kinds, told apart by ``kind`` (a discriminated union), so that a
mobility producer publishes on one topic. FIWARE mappings are in docs/contracts.md.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from schemas.envelope import Envelope, EventDatetime, Identifier, InseeCode
from schemas.field_error import FieldError

Count = Annotated[int, Field(ge=0)]
Km = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def _check_started_by_end(started_at: datetime, event_time: datetime, what: str) -> None:
    """A trip's or session's ``event_time`` is its end: it may not start later (zero length is fine)."""
    if started_at > event_time:
        raise FieldError("started_at", f"must not be after event_time (the {what}'s end)")


def _check_interval_before_end(interval_start: datetime, event_time: datetime) -> None:
    """An interval's ``event_time`` is its end: the interval must start strictly before it."""
    if interval_start >= event_time:
        raise FieldError("interval_start", "must be before event_time")


class TransitMode(StrEnum):
    BUS = "bus"
    SEA_BUS = "sea_bus"


class _Mobility(Envelope):
    model_config = Envelope.model_config | {"populate_by_name": True}

    schema_name: Literal["mobility.event"] = Field(default="mobility.event", alias="schema")
    device_id: Identifier
    commune: InseeCode


class _Trip(_Mobility):
    started_at: EventDatetime
    distance_km: Km

    def check(self) -> None:
        super().check()
        _check_started_by_end(self.started_at, self.event_time, "trip")


class BikeTrip(_Trip):
    kind: Literal["bike_trip"]
    electric: bool = False


class BikeStationStatus(_Mobility):
    """Aligned with FIWARE BikeHireDockingStation."""

    kind: Literal["bike_station_status"]
    available_bike_number: Count
    free_slot_number: Count
    total_slot_number: Annotated[int, Field(ge=1)]

    def check(self) -> None:
        super().check()
        if self.available_bike_number + self.free_slot_number > self.total_slot_number:
            raise FieldError("total_slot_number", "is less than available_bike_number + free_slot_number")


class TransitValidation(_Mobility):
    """Ticket validations on a bus or sea bus over an interval."""

    kind: Literal["transit_validation"]
    mode: TransitMode
    line: Identifier
    passengers: Count
    interval_start: EventDatetime

    def check(self) -> None:
        super().check()
        _check_interval_before_end(self.interval_start, self.event_time)


class TransitTrip(_Trip):
    """A vehicle run: distance and passengers carried give passenger-km."""

    kind: Literal["transit_trip"]
    mode: TransitMode
    line: Identifier
    passengers: Count
    energy_kwh: Km | None = None


class TrafficCount(_Mobility):
    """Aligned with FIWARE TrafficFlowObserved (intensity = vehicles in the interval)."""

    kind: Literal["traffic_count"]
    interval_start: EventDatetime
    intensity: Count
    average_vehicle_speed: Annotated[float, Field(ge=0, le=300, allow_inf_nan=False)] | None = None
    lane_id: int | None = None

    def check(self) -> None:
        super().check()
        _check_interval_before_end(self.interval_start, self.event_time)


class ParkingOccupancy(_Mobility):
    kind: Literal["parking_occupancy"]
    occupied_spot_number: Count
    total_spot_number: Annotated[int, Field(ge=1)]

    def check(self) -> None:
        super().check()
        if self.occupied_spot_number > self.total_spot_number:
            raise FieldError("occupied_spot_number", "exceeds total_spot_number")


class EvChargingSession(_Mobility):
    kind: Literal["ev_charging_session"]
    started_at: EventDatetime
    energy_kwh: Km

    def check(self) -> None:
        super().check()
        _check_started_by_end(self.started_at, self.event_time, "session")


class CarsharingTrip(_Trip):
    kind: Literal["carsharing_trip"]
    electric: bool = False


MobilityEvent = Annotated[
    BikeTrip
    | BikeStationStatus
    | TransitValidation
    | TransitTrip
    | TrafficCount
    | ParkingOccupancy
    | EvChargingSession
    | CarsharingTrip,
    Field(discriminator="kind"),
]
MOBILITY_ADAPTER: TypeAdapter[MobilityEvent] = TypeAdapter(MobilityEvent)
