"""Energy meter readings: consumption per carrier, and local production (solar PV).

A reading either covers an interval (``interval_start`` .. ``event_time``) or is a
cumulative index; indexes become consumption deltas downstream (``streams`` keeps the
previous index per meter and reports resets and rollovers instead of negative deltas).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.envelope import Envelope, EventDatetime, Identifier, InseeCode
from schemas.field_error import FieldError
from schemas.territory import Carrier, Sector
from schemas.units import UNITS_FOR_CARRIER, EnergyUnit, to_kwh


class EnergyReading(Envelope):
    """One meter reading. Quantities must be finite and non-negative."""

    schema_name: Literal["energy.reading"] = Field(default="energy.reading", alias="schema")
    meter_id: Identifier
    commune: InseeCode
    sector: Sector
    carrier: Carrier
    quantity: float = Field(ge=0, allow_inf_nan=False, description="energy, in ``unit``")
    unit: EnergyUnit
    kind: Literal["interval", "index"] = Field(
        description="interval: energy over [interval_start, event_time]; index: cumulative counter"
    )
    interval_start: EventDatetime | None = None

    model_config = Envelope.model_config | {"populate_by_name": True}

    def check(self) -> None:
        super().check()
        allowed = UNITS_FOR_CARRIER[self.carrier]  # a Carrier is its str value: no `.value` per event
        if self.unit not in allowed:
            raise FieldError(
                "unit",
                f"{self.unit.value!r} is not valid for carrier {self.carrier.value!r}; "
                f"use one of {sorted(u.value for u in allowed)}",
            )
        start = self.interval_start
        if self.kind == "interval":
            if start is None:
                raise FieldError("interval_start", "an interval reading needs interval_start")
            if start >= self.event_time:
                raise FieldError("interval_start", "must be before event_time")
        elif start is not None:
            raise FieldError("interval_start", "an index reading has no interval_start")

    @property
    def quantity_kwh(self) -> float:
        """The quantity in canonical kWh (PCS for natural gas)."""
        return to_kwh(self.quantity, self.unit)
