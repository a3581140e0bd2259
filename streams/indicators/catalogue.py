"""The indicators: unit and how a window's (total, count) becomes the published value."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pydantic_core import PydanticUndefined, to_json

from schemas.indicator import INDICATOR_UPDATE_WIRE, IndicatorUpdate, WireFormat, series_key
from schemas.local_calendar import UTC_CALENDAR, Calendar, window_end
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
    "ev_charging_behind_meter_kwh": ("kWh", "sum"),
    "transit_validations": ("count", "sum"),
    "traffic_vehicles": ("vehicles", "sum"),
    "parking_occupancy_ratio": ("ratio", "mean"),
    "bike_availability_ratio": ("ratio", "mean"),
    "environment_value": ("quantity unit", "mean"),
    # Derived at each flush (streams/indicators/derived.py): the value is the ratio itself.
    "renewable_share_ratio": ("ratio", "sum"),
    "modal_share_ratio": ("ratio", "sum"),
    "who_exceedance": ("exceedance", "sum"),
    "heating_degree_days": ("degree days", "sum"),
    "emissions_per_inhabitant_kgco2e": ("kgCO2e", "sum"),
    "energy_consumed_per_inhabitant_kwh": ("kWh", "sum"),
    # Per producer and commune (streams/indicators/producer_activity.py).
    "producer_last_event_time": ("epoch seconds", "sum"),
    "producer_completeness_ratio": ("ratio", "sum"),
}


def to_indicator_update(
    update: WindowUpdate, now: datetime, calendar: Calendar = UTC_CALENDAR
) -> IndicatorUpdate:
    """The update as published; ``calendar`` says where a day window ends."""
    unit, how = INDICATORS[update.indicator]
    value = update.total / update.count if how == "mean" and update.count else update.total
    start = _instant(update.start)
    if update.size == 0:  # year to date
        window, end = "ytd", now
    else:
        window, end = window_name(update.size), _instant(window_end(calendar, update.size, update.start))
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
    _set(update, "__dict__", {**_IN_MODEL_ORDER, **fields})
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


def indicator_record(
    update: WindowUpdate, now: datetime, now_json: bytes, calendar: Calendar = UTC_CALENDAR
) -> tuple[bytes, bytes]:
    """The Kafka key and value of ``update``: ``series_key`` and ``model_dump_json`` of
    ``to_indicator_update(update, now)``, byte for byte, without building the model.

    A flush can publish an update per reading, so the model's cost counted (bench/README.md).
    A series' record is a template written once from ``INDICATOR_UPDATE_WIRE`` (the model's
    keys, in its order); each update fills its slots with pydantic-core's own ``to_json``
    (floats and instants formatted exactly as the model's serializer does). ``now_json`` is
    ``to_json(now)``, once per flush. Anything the model would refuse takes the model's path.
    """
    _, how = INDICATORS[update.indicator]
    value = update.total / update.count if how == "mean" and update.count else update.total
    if now.tzinfo is not UTC or not math.isfinite(value) or update.revision < 0:
        indicator = to_indicator_update(update, now, calendar)  # raises what validation refuses
        return series_key(indicator), indicator.model_dump_json(by_alias=True).encode()
    key_prefix, template = _series_parts(update.indicator, update.dimensions, update.size)
    start = update.start
    return key_prefix + str(start).encode(), template % (
        # The slots of _PER_UPDATE, in its order.
        _instant_json(start),
        now_json if update.size == 0 else _instant_json(window_end(calendar, update.size, start)),
        _to_json(float(value)),
        b"true" if update.final else b"false",
        update.revision,
        now_json,
    )


_to_json = to_json

# A record is the model's fields in the model's order: its defaults (the schema and its
# version) written once for all, _SERIES once per series, _PER_UPDATE at each update. Both
# are in the model's order, so that their values fill %-slots (checked at import).
_SERIES = ("indicator", "unit", "window", "dimensions")
_PER_UPDATE: dict[str, bytes] = {
    "window_start": b"%b",
    "window_end": b"%b",
    "value": b"%b",
    "final": b"%b",
    "revision": b"%d",
    "updated_at": b"%b",
}
# Every field with its default, in the order model_dump_json follows: a model's __dict__.
_IN_MODEL_ORDER: dict[str, Any] = {name: info.default for name, info in IndicatorUpdate.model_fields.items()}


def _record_template(wire: WireFormat) -> bytes:
    """The record with its constants written, a %b slot per series field and a %%-slot per
    update field (a slot once the series is written in), keys and order from ``wire``. A field
    of the model none of the three write stops the import here."""
    order = list(wire.json_key)
    for written in (_SERIES, list(_PER_UPDATE)):
        if [name for name in order if name in written] != list(written):
            raise TypeError(
                f"indicator_record writes {list(written)} in this order; the model writes {order}"
            )
    parts = []
    for name, key in wire.json_key.items():
        default = wire.model.model_fields[name].default
        if name in _PER_UPDATE:
            value = b"%" + _PER_UPDATE[name]
        elif name in _SERIES:
            value = b"%b"
        elif default is PydanticUndefined:
            raise TypeError(f"indicator_record writes no value for {name} (streams/indicators/catalogue.py)")
        else:
            value = to_json(default).replace(b"%", b"%%%%")  # a % through two formattings
        parts.append(to_json(key) + b":" + value)
    return b"{" + b",".join(parts) + b"}"


_RECORD_TEMPLATE = _record_template(INDICATOR_UPDATE_WIRE)


@lru_cache(maxsize=65536)
def _series_parts(indicator: str, dimensions: Dimensions, size: int) -> tuple[bytes, bytes]:
    """The series' Kafka key prefix, and its record as a %-template of the _PER_UPDATE slots."""
    unit, _ = INDICATORS[indicator]
    window = "ytd" if size == 0 else window_name(size)
    series = (indicator, unit, window, dict(dimensions))  # _SERIES
    template = _RECORD_TEMPLATE % tuple(to_json(value).replace(b"%", b"%%") for value in series)
    dims = ",".join(f"{k}={v}" for k, v in sorted(dimensions))
    return f"{indicator}|{dims}|{window}|".encode(), template


@lru_cache(maxsize=65536)
def _instant_json(epoch_seconds: int) -> bytes:
    return to_json(_instant(epoch_seconds))
