"""Read points back from InfluxDB with Flux: how the demo and the tests see what was written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from influxdb_client import InfluxDBClient

from sinks.influx_buckets import bucket_for_window
from sinks.influx_target import InfluxTarget


def flux_string(text: str) -> str:
    """A Flux string literal (quotes and backslashes escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class StoredIndicator:
    time: datetime
    value: float
    final: bool


def read_indicator(
    target: InfluxTarget,
    indicator: str,
    window: str,
    dimensions: dict[str, str],
    start: datetime,
    stop: datetime,
) -> list[StoredIndicator]:
    """The points of one indicator series and window size between ``start`` and ``stop``."""
    tag_filters = "".join(
        f"\n  |> filter(fn: (r) => r[{flux_string(k)}] == {flux_string(v)})"
        for k, v in sorted(dimensions.items())
    )
    begin, end = (t.isoformat().replace("+00:00", "Z") for t in (start, stop))
    query = f"""
from(bucket: {flux_string(bucket_for_window(window, target))})
  |> range(start: {begin}, stop: {end})
  |> filter(fn: (r) => r._measurement == {flux_string(indicator)})
  |> filter(fn: (r) => r.window == {flux_string(window)}){tag_filters}
  |> filter(fn: (r) => r._field == "value" or r._field == "final")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> sort(columns: ["_time"])
"""
    with InfluxDBClient(url=target.url, token=target.token, org=target.org) as client:
        tables = client.query_api().query(query)
    return [
        StoredIndicator(record.get_time(), float(record["value"]), bool(record["final"]))
        for table in tables
        for record in table.records
    ]


# A point as InfluxDB identifies it: measurement, its tags (the window among them), its time.
PointId = tuple[str, tuple[tuple[str, str], ...], int]
NOT_TAGS = frozenset({"result", "table"})


def stored_points(
    target: InfluxTarget, bucket: str, window: str, start: datetime, stop: datetime
) -> dict[PointId, dict[str, object]]:
    """Every point of one window size in ``bucket`` between ``start`` and ``stop``, its fields
    by name: how a reconciliation compares what was published with what InfluxDB holds."""
    begin, end = (t.isoformat().replace("+00:00", "Z") for t in (start, stop))
    query = f"""
from(bucket: {flux_string(bucket)})
  |> range(start: {begin}, stop: {end})
  |> filter(fn: (r) => r.window == {flux_string(window)})
"""
    out: dict[PointId, dict[str, object]] = {}
    with InfluxDBClient(url=target.url, token=target.token, org=target.org, timeout=120_000) as client:
        for table in client.query_api().query(query):
            for record in table.records:
                values = record.values
                tags = tuple(
                    sorted(
                        (k, str(v)) for k, v in values.items() if not k.startswith("_") and k not in NOT_TAGS
                    )
                )
                point = (str(values["_measurement"]), tags, int(record.get_time().timestamp()))
                out.setdefault(point, {})[str(values["_field"])] = values["_value"]
    return out
