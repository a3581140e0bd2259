"""The indicators: unit and how a window's (total, count) becomes the published value."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from schemas.indicator import IndicatorUpdate
from streams.window_assignment import window_name
from streams.window_state import WindowUpdate

# indicator -> (unit, "sum" | "mean")
INDICATORS: dict[str, tuple[str, str]] = {
    "energy_consumed_kwh": ("kWh", "sum"),
    "emissions_kgco2e": ("kgCO2e", "sum"),
    "renewable_production_kwh": ("kWh", "sum"),
    "passenger_km": ("pkm", "sum"),
    "mobility_emissions_kgco2e": ("kgCO2e", "sum"),
    "ev_charging_kwh": ("kWh", "sum"),
    "ev_charging_emissions_kgco2e": ("kgCO2e", "sum"),
    "transit_validations": ("count", "sum"),
    "traffic_vehicles": ("vehicles", "sum"),
    "parking_occupancy_ratio": ("ratio", "mean"),
    "bike_availability_ratio": ("ratio", "mean"),
    "environment_value": ("quantity unit", "mean"),
    # Derived at each flush (streams/derived_indicators.py): the value is the ratio itself.
    "renewable_share_ratio": ("ratio", "sum"),
    "modal_share_ratio": ("ratio", "sum"),
    "who_exceedance": ("exceedance", "sum"),
    # Per producer and commune (streams/producer_activity.py).
    "producer_last_event_time": ("epoch seconds", "sum"),
    "producer_completeness_ratio": ("ratio", "sum"),
}


def to_indicator_update(update: WindowUpdate, now: datetime) -> IndicatorUpdate:
    unit, how = INDICATORS[update.indicator]
    value = update.total / update.count if how == "mean" and update.count else update.total
    start = _instant(update.start)
    if update.size == 0:  # year to date
        window, end = "ytd", now
    else:
        window, end = window_name(update.size), _instant(update.start + update.size)
    fields = {
        "indicator": update.indicator,
        "unit": unit,
        "window": window,
        "window_start": start,
        "window_end": end,
        "dimensions": dict(update.dimensions),
        "value": value,
        "final": update.final,
        "revision": update.revision,
        "updated_at": now,
    }
    if now.tzinfo is not UTC or not math.isfinite(value) or update.revision < 0:
        return IndicatorUpdate(**fields)  # what validation would change or refuse: validate
    return _trusted(fields)


def _trusted(fields: dict[str, Any]) -> IndicatorUpdate:
    """The model ``IndicatorUpdate(**fields)`` would build from values that already satisfy
    it (UTC instants, a finite value, names from the catalogue), without validating them
    again: what ``model_construct`` does, without its generic cost (2.6 -> 0.7 us)."""
    update = _new(IndicatorUpdate)
    _set(update, "__dict__", {"schema_name": "indicator.update", "schema_version": 1, **fields})
    _set(update, "__pydantic_fields_set__", set(fields))
    _set(update, "__pydantic_extra__", None)
    _set(update, "__pydantic_private__", None)
    return update


_new = object.__new__
_set = object.__setattr__


@lru_cache(maxsize=65536)
def _instant(epoch_seconds: int) -> datetime:
    # Window bounds repeat at every flush: one datetime per instant.
    return datetime.fromtimestamp(epoch_seconds, UTC)


def series_key(update: IndicatorUpdate) -> bytes:
    """The compaction key: one series and one window start."""
    dims = ",".join(f"{k}={v}" for k, v in sorted(update.dimensions.items()))
    return f"{update.indicator}|{dims}|{update.window}|{int(update.window_start.timestamp())}".encode()
