"""The indicators: unit and how a window's (total, count) becomes the published value."""

from __future__ import annotations

from datetime import UTC, datetime

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
}


def to_indicator_update(update: WindowUpdate, now: datetime) -> IndicatorUpdate:
    unit, how = INDICATORS[update.indicator]
    value = update.total / update.count if how == "mean" and update.count else update.total
    start = datetime.fromtimestamp(update.start, UTC)
    if update.size == 0:  # year to date
        window, end = "ytd", now
    else:
        window, end = window_name(update.size), datetime.fromtimestamp(update.start + update.size, UTC)
    return IndicatorUpdate(
        indicator=update.indicator,
        unit=unit,
        window=window,
        window_start=start,
        window_end=end,
        dimensions=dict(update.dimensions),
        value=value,
        final=update.final,
        revision=update.revision,
        updated_at=now,
    )


def series_key(update: IndicatorUpdate) -> bytes:
    """The compaction key: one series and one window start."""
    dims = ",".join(f"{k}={v}" for k, v in sorted(update.dimensions.items()))
    return f"{update.indicator}|{dims}|{update.window}|{int(update.window_start.timestamp())}".encode()
