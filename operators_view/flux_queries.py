"""The Flux queries behind the page's figures, on the data model of sinks/README.md (the same
measurement, field and tag names as the Grafana dashboards of docker/grafana/).

Pure: each function returns a query text for given instants, so the queries can be read and
tested without InfluxDB. Windows are UTC, as the indicator stage cuts them.
"""

from __future__ import annotations

from datetime import datetime

from sinks.influx_readback import flux_string
from sinks.territory_rollup import OURS

EMISSIONS = ("emissions_kgco2e", "mobility_emissions_kgco2e", "ev_charging_emissions_kgco2e")
"""What the territory's emissions add up to (sinks/territory_rollup.py sums the same three)."""
ENERGY = "energy_consumed_kwh"
MOBILITY = ("passenger_km", "mobility_emissions_kgco2e")
TERRITORY = OURS  # what the sink's territory rollup publishes
AIR_QUANTITIES = ("no2", "pm10", "pm25", "o3")


def flux_time(moment: datetime) -> str:
    """A Flux time literal (RFC 3339, UTC)."""
    return moment.isoformat().replace("+00:00", "Z")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return " or ".join(f"r.{column} == {flux_string(v)}" for v in values)


def emissions_and_energy(bucket: str, day: datetime) -> str:
    """Today's hourly and daily emissions and energy per commune and sector (one row per hour,
    hourly windows summed over carriers and modes; the daily window once, at the day's start)."""
    return f"""
from(bucket: {flux_string(bucket)})
  |> range(start: {flux_time(day)})
  |> filter(fn: (r) => {_one_of("_measurement", (*EMISSIONS, ENERGY))})
  |> filter(fn: (r) => (r.window == "1h" or r.window == "1d") and r._field == "value")
  |> group(columns: ["_measurement", "window", "commune", "sector"])
  |> aggregateWindow(every: 1h, fn: sum, timeSrc: "_start", createEmpty: false)
"""


def mobility_by_mode(bucket: str, day: datetime) -> str:
    """Today's passenger-km and mobility emissions per mode, hourly and daily, all communes."""
    return f"""
from(bucket: {flux_string(bucket)})
  |> range(start: {flux_time(day)})
  |> filter(fn: (r) => {_one_of("_measurement", MOBILITY)})
  |> filter(fn: (r) => (r.window == "1h" or r.window == "1d") and r._field == "value")
  |> group(columns: ["_measurement", "window", "mode"])
  |> aggregateWindow(every: 1h, fn: sum, timeSrc: "_start", createEmpty: false)
"""


def territory_year_to_date(bucket: str, year: datetime) -> str:
    """The territory's latest year-to-date emissions, gross and net, their targets and ratios."""
    return f"""
from(bucket: {flux_string(bucket)})
  |> range(start: {flux_time(year)})
  |> filter(fn: (r) => {_one_of("_measurement", TERRITORY)})
  |> filter(fn: (r) => r.window == "ytd" and r._field == "value")
  |> last()
"""


def air_quality(bucket: str, day: datetime, since: datetime) -> str:
    """Per station and pollutant: the latest hourly mean (since ``since``) and today's mean."""
    return f"""
from(bucket: {flux_string(bucket)})
  |> range(start: {flux_time(min(day, since))})
  |> filter(fn: (r) => r._measurement == "environment_value" and r._field == "value")
  |> filter(fn: (r) => {_one_of("quantity", AIR_QUANTITIES)})
  |> filter(fn: (r) => (r.window == "1h" and r._time >= {flux_time(since)})
      or (r.window == "1d" and r._time >= {flux_time(day)}))
  |> group(columns: ["window", "commune", "station", "quantity"])
  |> last()
"""


def who_exceedance_days(bucket: str, year: datetime) -> str:
    """Days above the WHO 2021 24-hour guideline this year, per station and pollutant."""
    return f"""
from(bucket: {flux_string(bucket)})
  |> range(start: {flux_time(year)})
  |> filter(fn: (r) => r._measurement == "who_exceedance" and r.window == "1d" and r._field == "value")
  |> group(columns: ["station", "quantity"])
  |> sum()
"""


def producer_last_events(bucket: str, year: datetime) -> str:
    """The latest event time received from each producer (any commune), epoch seconds."""
    return f"""
from(bucket: {flux_string(bucket)})
  |> range(start: {flux_time(year)})
  |> filter(fn: (r) => r._measurement == "producer_last_event_time" and r.window == "ytd")
  |> filter(fn: (r) => r._field == "value")
  |> group(columns: ["producer"])
  |> max()
"""


def producer_completeness(bucket: str, hour: datetime) -> str:
    """This hour's completeness of each producer, the mean over its communes."""
    return f"""
from(bucket: {flux_string(bucket)})
  |> range(start: {flux_time(hour)})
  |> filter(fn: (r) => r._measurement == "producer_completeness_ratio" and r.window == "1h")
  |> filter(fn: (r) => r._field == "value")
  |> group(columns: ["producer"])
  |> mean()
"""


def causal_evidence(bucket: str, since: datetime) -> str:
    """The latest point of each hypothesis, commune and status since ``since``, its fields as
    columns (pivoted before anything else: the fields are of several types, which one table
    cannot hold in ``_value``); the newest per hypothesis and commune is the current one."""
    return f"""
from(bucket: {flux_string(bucket)})
  |> range(start: {flux_time(since)})
  |> filter(fn: (r) => r._measurement == "causal_evidence")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> last(column: "_time")
"""
