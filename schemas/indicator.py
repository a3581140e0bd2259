"""Indicator updates: what the platform publishes for dashboards and downstream services."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.envelope import UtcDatetime


class IndicatorUpdate(BaseModel):
    """The current value of one indicator for one window and one set of dimensions.

    Keyed by (indicator, window, window_start, dimensions): a later update with the same key
    replaces the earlier one (compacted topics, idempotent InfluxDB points).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_name: Literal["indicator.update"] = Field(default="indicator.update", alias="schema")
    schema_version: int = 1
    indicator: str = Field(min_length=1, description="e.g. energy_consumed, emissions")
    unit: str = Field(description="e.g. kWh, kgCO2e, pkm, ratio")
    window: str = Field(description="window size: 1m, 15m, 1h, 1d, ytd")
    window_start: UtcDatetime
    window_end: UtcDatetime
    dimensions: dict[str, str] = Field(default_factory=dict, description="commune, sector, carrier...")
    value: float = Field(allow_inf_nan=False)
    final: bool = Field(default=False, description="true once the window closed on event time")
    revision: int = Field(default=0, ge=0, description="increases each time late data corrects it")
    updated_at: UtcDatetime
