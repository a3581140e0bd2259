"""The event families: which contract a raw topic carries and which field names the device."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic_core import SchemaValidator

from schemas.energy import EnergyReading
from schemas.environment import EnvironmentReading
from schemas.mobility import MOBILITY_ADAPTER


@dataclass(frozen=True)
class Family:
    """One family of events: its name, its validator and its device-id field."""

    name: str
    adapter: TypeAdapter[Any]
    device_field: str
    description: str
    # The adapter's pydantic-core validator, called directly on the per-event path: the same
    # validation without TypeAdapter's Python wrapper (bench/validation_throughput.py).
    validator: SchemaValidator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "validator", self.adapter.validator)

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
