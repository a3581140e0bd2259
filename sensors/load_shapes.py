"""The territory's rhythms as pure functions of time: weather, sun, occupancy, traffic.

Every simulated device reads the same clock through these, so that the curves agree with
each other (heating follows the cold, NO2 follows the traffic, PV follows the sun). They
are smooth, deterministic shapes; the simulator adds the noise. Time is UTC epoch seconds;
shapes of human activity use La Rochelle's local time (Europe/Paris, with summer time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
LA_ROCHELLE_LAT, LA_ROCHELLE_LON = 46.16, -1.15
HEATING_BASE_C = 16.0
"""Below this outdoor temperature buildings are heated (the French degree-day convention)."""

_offsets: dict[int, int] = {}
_days_of_year: dict[int, int] = {}


@dataclass(frozen=True, slots=True)
class LocalClock:
    hour: float  # 0 <= hour < 24, local time
    weekday: int  # Monday = 0
    day_of_year: int  # 1..366


_clocks: dict[int, LocalClock] = {}


def local_clock(t: float) -> LocalClock:
    """Local hour, weekday and day of year at UTC epoch second ``t``, to the minute (memoised)."""
    minute = int(t // 60)
    clock = _clocks.get(minute)
    if clock is None:
        if len(_clocks) > 20_000:
            _clocks.clear()
        clock = _clocks[minute] = _local_clock(minute * 60.0)
    return clock


def _local_clock(t: float) -> LocalClock:
    hour_bucket = int(t // 3600)
    offset = _offsets.get(hour_bucket)
    if offset is None:
        utc_offset = datetime.fromtimestamp(hour_bucket * 3600, UTC).astimezone(PARIS).utcoffset()
        offset = int(utc_offset.total_seconds()) if utc_offset is not None else 0
        _offsets[hour_bucket] = offset
    local = t + offset
    day = int(local // 86400)
    doy = _days_of_year.get(day)
    if doy is None:
        doy = datetime.fromtimestamp(day * 86400, UTC).timetuple().tm_yday
        _days_of_year[day] = doy
    return LocalClock((local % 86400) / 3600, (day + 3) % 7, doy)  # 1970-01-01 was a Thursday


def outdoor_temperature(clock: LocalClock) -> float:
    """Typical La Rochelle air temperature (°C): 6 in January nights, 25 on July afternoons."""
    seasonal = 13.5 - 7.5 * math.cos(2 * math.pi * (clock.day_of_year - 20) / 365.25)
    daily = -4.0 * math.cos(2 * math.pi * (clock.hour - 3) / 24)  # coldest at 03:00, warmest at 15:00
    return seasonal + daily


def heating_need(temperature: float) -> float:
    """Heating demand as a share of the design-day demand (0 when warm, 1 at -5 °C)."""
    return max(0.0, HEATING_BASE_C - temperature) / (HEATING_BASE_C + 5.0)


def sun_height(t: float, lat: float = LA_ROCHELLE_LAT, lon: float = LA_ROCHELLE_LON) -> float:
    """Sine of the sun's elevation at UTC epoch second ``t`` (negative at night)."""
    days = t / 86400.0
    doy = days % 365.25
    declination = math.radians(-23.44) * math.cos(2 * math.pi * (doy + 10) / 365.25)
    solar_hour = (days % 1.0) * 24 + lon / 15.0
    hour_angle = math.radians(15.0 * (solar_hour - 12.0))
    phi = math.radians(lat)
    return math.sin(phi) * math.sin(declination) + math.cos(phi) * math.cos(declination) * math.cos(
        hour_angle
    )


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-(((hour - centre) / width) ** 2))


def occupancy(clock: LocalClock, sector: str) -> float:
    """How busy a building of ``sector`` is (0..1): homes in mornings and evenings, offices by day."""
    weekend = clock.weekday >= 5
    h = clock.hour
    if sector == "residential":
        return (
            0.25
            + 0.45 * _bump(h, 7.5, 1.5)
            + 0.75 * _bump(h, 19.5, 2.5)
            + (0.3 if weekend else 0.0) * _bump(h, 13, 3)
        )
    if sector == "industry":
        return 0.35 if weekend else 0.5 + 0.5 * _bump(h, 13, 6)
    if sector == "agriculture":
        return 0.3 + 0.5 * _bump(h, 11, 4)
    # tertiary, public and transport buildings: open on weekdays, quieter on Saturdays.
    open_hours = _bump(h, 13.5, 4.5)
    return 0.1 + (0.3 if weekend else 0.85) * open_hours


def traffic(clock: LocalClock) -> float:
    """Road traffic relative to the weekday evening peak (0..1)."""
    h = clock.hour
    if clock.weekday >= 5:
        return 0.05 + 0.55 * _bump(h, 15, 4)
    return 0.04 + 0.85 * _bump(h, 8.0, 1.3) + 1.0 * _bump(h, 17.8, 1.8) + 0.45 * _bump(h, 12.5, 2.5)


def tourism(clock: LocalClock) -> float:
    """Seasonal visitors (sea bus, car parks, bikes): 1 in mid-August, 0.35 in winter."""
    return 0.35 + 0.65 * _bump(clock.day_of_year, 225, 45)
