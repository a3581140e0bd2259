"""Runs the page's Flux queries against InfluxDB and returns their records as plain rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from influxdb_client import InfluxDBClient

from operators_view import flux_queries
from schemas.local_calendar import UTC_CALENDAR, Calendar
from sinks.influx_buckets import bucket_for_window
from sinks.influx_target import InfluxTarget

Row = dict[str, Any]
_TAGS = ("window", "commune", "sector", "mode", "station", "quantity", "producer")
EVIDENCE_KEPT = timedelta(days=2)
"""How old the newest evidence of a hypothesis may be to show: the analysis runs hourly."""


@dataclass(frozen=True)
class Instants:
    """The instants a refresh is computed for (UTC): now, and the starts of its hour, and of its
    day and year on the calendar the indicator stage cuts them on (its ``ZC_TIME_ZONE``)."""

    now: datetime
    hour: datetime
    day: datetime
    year: datetime

    @classmethod
    def at(cls, now: datetime, calendar: Calendar = UTC_CALENDAR) -> Instants:
        now = now.astimezone(UTC)
        hour = now.replace(minute=0, second=0, microsecond=0)
        ts = int(now.timestamp())
        day, year = calendar.day(ts)[0], calendar.year_start(calendar.year_of(ts))
        return cls(now, hour, datetime.fromtimestamp(day, UTC), datetime.fromtimestamp(year, UTC))


@dataclass(frozen=True)
class IndicatorRows:
    emissions_and_energy: list[Row]
    mobility: list[Row]
    territory: list[Row]
    air: list[Row]
    exceedances: list[Row]
    producer_last_events: list[Row]
    producer_completeness: list[Row]
    evidence: list[Row]


def _rows(client: InfluxDBClient, query: str) -> list[Row]:
    out = []
    for table in client.query_api().query(query):
        for record in table.records:
            values = record.values
            row: Row = {"measurement": values.get("_measurement"), "value": record.get_value()}
            row["time"] = values.get("_time")
            row.update({tag: values[tag] for tag in _TAGS if values.get(tag) is not None})
            out.append(row)
    return out


class IndicatorReader:
    """One InfluxDB client kept open while the page is watched (blocking: run in a thread)."""

    def __init__(self, target: InfluxTarget, evidence_bucket: str) -> None:
        self._target = target
        self._evidence_bucket = evidence_bucket
        self._client = InfluxDBClient(url=target.url, token=target.token, org=target.org, timeout=10_000)

    def close(self) -> None:
        self._client.close()

    def read(self, at: Instants) -> IndicatorRows:
        """Every figure's rows at ``at``."""
        bucket = bucket_for_window("1h", self._target)
        client = self._client
        return IndicatorRows(
            emissions_and_energy=_rows(client, flux_queries.emissions_and_energy(bucket, at.day)),
            mobility=_rows(client, flux_queries.mobility_by_mode(bucket, at.day)),
            territory=_rows(client, flux_queries.territory_year_to_date(bucket, at.year)),
            air=_rows(client, flux_queries.air_quality(bucket, at.day, at.hour - timedelta(hours=2))),
            exceedances=_rows(client, flux_queries.who_exceedance_days(bucket, at.year)),
            producer_last_events=_rows(client, flux_queries.producer_last_events(bucket, at.year)),
            producer_completeness=_rows(client, flux_queries.producer_completeness(bucket, at.hour)),
            evidence=self.evidence(at.now - EVIDENCE_KEPT),
        )

    def evidence(self, since: datetime) -> list[Row]:
        """The causal evidence points since ``since``: their tags, time and fields."""
        query = flux_queries.causal_evidence(self._evidence_bucket, since)
        out = []
        for table in self._client.query_api().query(query):
            for record in table.records:
                out.append({k: v for k, v in record.values.items() if k not in ("result", "table")})
                out[-1]["time"] = out[-1].pop("_time")
        return out
