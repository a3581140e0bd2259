"""The hourly indicators an analysis run reads from InfluxDB, and where it writes its evidence.

One Flux query per series a hypothesis names: the indicator's hourly windows (``window == "1h"``,
the field ``value``) whose tags include the selector's dimensions, in the run's window. The
rows come back per commune and hour; where several series of a commune match (two weather
stations, several sectors when the selector names none), their mean at each hour stands for
the commune: Granger's test is blind to the scale, and a mean does not jump when one series
misses an hour, as a sum would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

from analysis.evidence import TERRITORY
from analysis.hypotheses import Selector
from schemas.causal_evidence import CausalEvidence
from sinks.influx_readback import flux_string

MEASUREMENT = "causal_evidence"


def flux_time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def hourly_query(bucket: str, selector: Selector, start: datetime, end: datetime) -> str:
    """The Flux query of ``selector``'s hourly values from ``start`` (included) to ``end``."""
    filters = "".join(
        f"\n  |> filter(fn: (r) => r[{flux_string(k)}] == {flux_string(v)})" for k, v in selector.where
    )
    return f"""
from(bucket: {flux_string(bucket)})
  |> range(start: {flux_time(start)}, stop: {flux_time(end)})
  |> filter(fn: (r) => r._measurement == {flux_string(selector.indicator)})
  |> filter(fn: (r) => r.window == "1h" and r._field == "value"){filters}
  |> keep(columns: ["_time", "_value", "commune"])
"""


def by_commune(rows: Iterable[tuple[str | None, datetime, float]]) -> dict[str, dict[int, float]]:
    """Rows (commune, hour, value) as each commune's mean value per hour (epoch seconds)."""
    sums: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for commune, hour, value in rows:
        sums[commune or TERRITORY][int(hour.timestamp())].append(value)
    return {c: {ts: sum(v) / len(v) for ts, v in hours.items()} for c, hours in sums.items()}


class InfluxHourly:
    """Reads hourly series with the analysis's token; writes the evidence with the same."""

    def __init__(self, client: InfluxDBClient, org: str, bucket: str, evidence_bucket: str) -> None:
        self.client, self.org = client, org
        self.bucket, self.evidence_bucket = bucket, evidence_bucket
        self.queries = 0

    def reader(self, start: datetime, end: datetime) -> Any:
        """``read(selector)`` for analysis/evidence.py, memoised: hypotheses share series."""
        cache: dict[Selector, Mapping[str, Mapping[int, float]]] = {}

        def read(selector: Selector) -> Mapping[str, Mapping[int, float]]:
            if selector not in cache:
                self.queries += 1
                tables = self.client.query_api().query(
                    hourly_query(self.bucket, selector, start, end), org=self.org
                )
                cache[selector] = by_commune(
                    (r.values.get("commune"), r.values["_time"], float(r.values["_value"]))
                    for table in tables
                    for r in table.records
                )
            return cache[selector]

        return read

    def write(self, records: Iterable[CausalEvidence]) -> int:
        """One point per record at its window's end; how many were written. InfluxDB refusing
        them raises: the run fails, and says why, rather than publish half of its evidence."""
        lines = [evidence_line(r) for r in records]
        if lines:
            with self.client.write_api(write_options=SYNCHRONOUS) as api:
                api.write(self.evidence_bucket, self.org, "\n".join(lines), write_precision=WritePrecision.S)
        return len(lines)


_TAG_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\=", "\n": r"\n"})


def _field(value: float | int | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def evidence_line(record: CausalEvidence) -> str:
    """The record as an InfluxDB line: the key and status as tags, the figures as fields
    (those the test did not produce are left out, never written as 0), at the window's end."""
    tags = {"hypothesis": record.hypothesis, "status": record.status}
    if record.commune:
        tags["commune"] = record.commune
    fields: dict[str, float | int | str | None] = {
        "n": record.n,
        "q": record.q,
        "tests_in_run": record.tests_in_run,
        "method_version": record.method_version,
        "window_hours": int((record.window_end - record.window_start).total_seconds()) // 3600,
        "lag_hours": record.lag_hours,
        "effect_size": record.effect_size,
        "sign": record.sign,
        "p_value": record.p_value,
        "ccf_lag_hours": record.ccf_lag_hours,
        "ccf": record.ccf,
        "detail": record.detail or None,
    }
    tag_text = ",".join(f"{k}={v.translate(_TAG_ESCAPES)}" for k, v in sorted(tags.items()))
    field_text = ",".join(f"{k}={_field(v)}" for k, v in fields.items() if v is not None)
    return f"{MEASUREMENT},{tag_text} {field_text} {int(record.window_end.timestamp())}"
