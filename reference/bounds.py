"""Plausibility bounds, as read from ``plausibility.toml``."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeBounds(_Strict):
    max_future_seconds: float = Field(gt=0)
    max_past_days: float = Field(gt=0)

    # Precomputed: the check runs once per event.
    @cached_property
    def max_future(self) -> timedelta:
        return timedelta(seconds=self.max_future_seconds)

    @cached_property
    def max_past(self) -> timedelta:
        return timedelta(days=self.max_past_days)


class PayloadBounds(_Strict):
    max_bytes: int = Field(gt=0)


class EnergyBounds(_Strict):
    max_power_kw: dict[str, float]
    max_index_kwh: float = Field(gt=0)

    def power_limit_kw(self, carrier: str, sector: str) -> float:
        """The most specific bound: ``carrier.sector``, then ``carrier``, then ``default``."""
        for key in (f"{carrier}.{sector}", carrier, "default"):
            if key in self.max_power_kw:
                return self.max_power_kw[key]
        return float("inf")


class EnvironmentBounds(_Strict):
    range: dict[str, tuple[float, float]]


class MobilityBounds(_Strict):
    max_trip_km: float
    max_bike_trip_km: float
    max_charging_kwh: float
    max_passengers_per_event: int


class PlausibilityBounds(_Strict):
    version: str
    time: TimeBounds
    payload: PayloadBounds
    energy: EnergyBounds
    environment: EnvironmentBounds
    mobility: MobilityBounds
