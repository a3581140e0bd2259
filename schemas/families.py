"""The event families: which contract a raw topic carries and which field names the device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter

from schemas.energy import EnergyReading
from schemas.environment import EnvironmentReading
from schemas.mobility import MOBILITY_ADAPTER, MobilityEvent


@dataclass(frozen=True)
class Family:
    """One family of events: its name, its validator and its device-id field."""

    name: str
    adapter: TypeAdapter[Any]
    device_field: str
    description: str

    def parse_json(self, raw: bytes) -> BaseModel:
        event: BaseModel = self.adapter.validate_json(raw)
        return event


FAMILIES: dict[str, Family] = {
    "energy": Family(
        "energy",
        TypeAdapter(EnergyReading),
        "meter_id",
        "energy meter readings (consumption by carrier, local production)",
    ),
    "environment": Family(
        "environment",
        TypeAdapter(EnvironmentReading),
        "sensor_id",
        "air quality, weather, indoor CO2 and noise readings",
    ),
    "mobility": Family(
        "mobility",
        MOBILITY_ADAPTER,
        "device_id",
        "bike share, public transport, traffic, car parks, EV charging, car sharing",
    ),
}

MobilityEventType = MobilityEvent
