"""The territory's rhythms as pure functions of time: weather, sun, occupancy, traffic.

Every simulated device reads the same clock through these, so that the curves agree with
each other (heating follows the cold, NO2 follows the traffic, PV follows the sun). They
are deterministic shapes; the simulator adds the noise. Time is UTC epoch seconds; shapes of
human activity use La Rochelle's local time (Europe/Paris, with summer time).

Beside the shapes, two anomalies make the causes visible after the daily and weekly cycles are
removed, as the causal analysis removes them (docs/causal-evidence.md): the weather's departure
from the season (hours to days long, the same over the territory: every station measures it,
heating answers it) and each commune's traffic departure from its usual day (NO2 answers it an
hour later). Both are autoregressive series of the hour, drawn from a hash of the hour and not
from a generator, so that every device, in any order and in any process, reads the same value.
"""

from __future__ import annotations

import hashlib
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


WEATHER_SD_C, WEATHER_PERSISTENCE = 2.0, 0.95
"""The weather anomaly: 2 °C of standard deviation, 95 % of it kept from one hour to the next."""
TRAFFIC_SD, TRAFFIC_PERSISTENCE = 0.15, 0.8
"""A commune's traffic anomaly: 15 % of its usual flow, 80 % kept from one hour to the next."""
NO2_DELAY_S = 3600
"""NO2 builds up over the hour after the traffic that emits it."""
_ANOMALY_TERMS = 60  # past hours summed: 0.95**60 = 5 % of the first term's weight is left out
_anomalies: dict[tuple[str, int], float] = {}


def _white(key: str, hour: int) -> float:
    """A standard normal number, the same for ``key`` and ``hour`` everywhere (Box-Muller)."""
    digest = hashlib.blake2b(f"{key}:{hour}".encode(), digest_size=8).digest()
    u1 = (int.from_bytes(digest[:4], "big") + 0.5) / 2**32
    u2 = (int.from_bytes(digest[4:], "big") + 0.5) / 2**32
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def _hourly_anomaly(key: str, hour: int, persistence: float, sd: float) -> float:
    """An AR(1) series of the hour with this persistence and standard deviation, as the sum of
    its last innovations (memoised: devices share their hours)."""
    value = _anomalies.get((key, hour))
    if value is None:
        if len(_anomalies) > 50_000:
            _anomalies.clear()
        scale = sd * math.sqrt(1.0 - persistence**2)
        value = scale * sum(persistence**k * _white(key, hour - k) for k in range(_ANOMALY_TERMS))
        _anomalies[(key, hour)] = value
    return value


def _anomaly(key: str, t: float, persistence: float, sd: float) -> float:
    """The hourly series at ``t``, linear between the hours (no step at each hour)."""
    hour, into = divmod(t / 3600.0, 1.0)
    h = int(hour)
    now, then = (_hourly_anomaly(key, h + k, persistence, sd) for k in (0, 1))
    return now + (then - now) * into


def weather_anomaly(t: float) -> float:
    """How much warmer (°C) than the season's shape the territory is at ``t``."""
    return _anomaly("weather", t, WEATHER_PERSISTENCE, WEATHER_SD_C)


def traffic_anomaly(commune: str, t: float) -> float:
    """How much busier (a share) than usual ``commune``'s roads are at ``t``."""
    return _anomaly(f"traffic:{commune}", t, TRAFFIC_PERSISTENCE, TRAFFIC_SD)


@dataclass(frozen=True, slots=True)
class LocalClock:
    hour: float  # 0 <= hour < 24, local time
    weekday: int  # Monday = 0
    day_of_year: int  # 1..366
    weather: float = 0.0  # the weather anomaly (°C) at this minute


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
    # 1970-01-01 was a Thursday
    return LocalClock((local % 86400) / 3600, (day + 3) % 7, doy, weather_anomaly(t))


def outdoor_temperature(clock: LocalClock) -> float:
    """La Rochelle's air temperature (°C): 6 in January nights, 25 on July afternoons, and the
    weather's departure from them."""
    seasonal = 13.5 - 7.5 * math.cos(2 * math.pi * (clock.day_of_year - 20) / 365.25)
    daily = -4.0 * math.cos(2 * math.pi * (clock.hour - 3) / 24)  # coldest at 03:00, warmest at 15:00
    return seasonal + daily + clock.weather


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
