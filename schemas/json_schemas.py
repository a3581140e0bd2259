"""JSON Schemas of every event type, generated from the pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from schemas.causal_evidence import CausalEvidence
from schemas.dead_letter import DeadLetter
from schemas.energy import EnergyReading
from schemas.environment import EnvironmentReading
from schemas.indicator import IndicatorUpdate
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

EVENT_TYPES: tuple[type[BaseModel], ...] = (
    EnergyReading,
    EnvironmentReading,
    BikeTrip,
    BikeStationStatus,
    TransitValidation,
    TransitTrip,
    TrafficCount,
    ParkingOccupancy,
    EvChargingSession,
    CarsharingTrip,
    IndicatorUpdate,
    CausalEvidence,
    DeadLetter,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def standalone_schemas() -> dict[str, dict[str, Any]]:
    """One self-contained JSON Schema (draft 2020-12) per event type, keyed by type name."""
    out = {}
    for model in EVENT_TYPES:
        schema = model.model_json_schema(by_alias=True, mode="validation")
        out[model.__name__] = {"$schema": DIALECT, "$id": f"urn:zerocarbon:schema:{model.__name__}", **schema}
    return out


def component_schemas(ref_prefix: str) -> dict[str, Any]:
    """All event types and their sub-schemas in one namespace, refs pointing at ``ref_prefix``."""
    _, defs = models_json_schema(
        [(model, "validation") for model in EVENT_TYPES],
        by_alias=True,
        ref_template=ref_prefix + "{model}",
    )
    schemas: dict[str, Any] = defs.get("$defs", {})
    return schemas
