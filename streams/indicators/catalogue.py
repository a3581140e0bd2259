"""The indicators: unit and how a window's (total, count) becomes the published value."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pydantic_core import to_json

from schemas.indicator import IndicatorUpdate
from streams.indicators.enrichment import Dimensions
from streams.indicators.window_assignment import window_name
from streams.indicators.window_state import WindowUpdate

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
    # Derived at each flush (streams/indicators/derived.py): the value is the ratio itself.
    "renewable_share_ratio": ("ratio", "sum"),
    "modal_share_ratio": ("ratio", "sum"),
    "who_exceedance": ("exceedance", "sum"),
    # Per producer and commune (streams/indicators/producer_activity.py).
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
    again: what ``model_construct`` does, without its generic cost (bench/README.md)."""
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


def indicator_record(update: WindowUpdate, now: datetime, now_json: bytes) -> tuple[bytes, bytes]:
    """The Kafka key and value of ``update``: ``series_key`` and ``model_dump_json`` of
    ``to_indicator_update(update, now)``, byte for byte, without building the model.

    A flush can publish an update per reading, so the model's cost counted (bench/README.md).
    Here what a series always writes the same way is cached, and each value goes through
    pydantic-core's own ``to_json`` (floats and instants formatted exactly as the model's
    serializer does). ``now_json`` is ``to_json(now)``, once per flush. Anything the model
    would refuse takes the model's path.
    """
    _, how = INDICATORS[update.indicator]
    value = update.total / update.count if how == "mean" and update.count else update.total
    if now.tzinfo is not UTC or not math.isfinite(value) or update.revision < 0:
        indicator = to_indicator_update(update, now)  # raises what validation refuses
        return series_key(indicator), indicator.model_dump_json(by_alias=True).encode()
    key_prefix, json_prefix = _series_parts(update.indicator, update.dimensions, update.size)
    start = update.start
    end = now_json if update.size == 0 else _instant_json(start + update.size)
    return (
        key_prefix + str(start).encode(),
        b"".join(
            (
                json_prefix,
                b',"window_start":', _instant_json(start),
                b',"window_end":', end,
                b',"dimensions":', _dimensions_json(update.dimensions),
                b',"value":', _to_json(float(value)),
                b',"final":true' if update.final else b',"final":false',
                b',"revision":', str(update.revision).encode(),
                b',"updated_at":', now_json, b"}",
            )
        ),
    )  # fmt: skip


_to_json = to_json


@lru_cache(maxsize=65536)
def _series_parts(indicator: str, dimensions: Dimensions, size: int) -> tuple[bytes, bytes]:
    unit, _ = INDICATORS[indicator]
    window = "ytd" if size == 0 else window_name(size)
    dims = ",".join(f"{k}={v}" for k, v in sorted(dimensions))
    json_prefix = b"".join(
        (
            b'{"schema":"indicator.update","schema_version":1,"indicator":', to_json(indicator),
            b',"unit":', to_json(unit), b',"window":', to_json(window),
        )
    )  # fmt: skip
    return f"{indicator}|{dims}|{window}|".encode(), json_prefix


@lru_cache(maxsize=65536)
def _dimensions_json(dimensions: Dimensions) -> bytes:
    return to_json(dict(dimensions))


@lru_cache(maxsize=65536)
def _instant_json(epoch_seconds: int) -> bytes:
    return to_json(_instant(epoch_seconds))
