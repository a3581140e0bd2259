"""`zerocarbon analyse` on the real stack (issue 25): hourly series written to InfluxDB as the
sink writes indicators, the shipped hypotheses read, the evidence published to
zc.causal-evidence and the causal_evidence bucket, each under its own scoped identity.

Planted series (analysis/synthetic_series.py): in commune A the vehicles counted drive the NO2
three hours later; in commune B they are unrelated. Only A's is evidence. The window is in
2020, where no other test writes: the series are the test's own.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.write_api import SYNCHRONOUS

from analysis.synthetic_series import planted_var
from config.kafka_access import KafkaAccess
from config.settings import Settings
from operators_view.causal_evidence_rows import current_evidence
from operators_view.indicator_reader import IndicatorReader
from schemas.catalogue import CAUSAL_EVIDENCE_TOPIC
from schemas.causal_evidence import CausalEvidence
from sinks.influx_readback import flux_string
from sinks.influx_target import InfluxTarget
from stack import influx_provisioning
from streams.kafka_admin import consumer_records_after, topic_ends
from zerocarbon.component_configs import influx_token

END = datetime(2020, 1, 27, tzinfo=UTC)
DAYS = 28
HOURS = DAYS * 24


def _series_points(commune: str, x: np.ndarray, y: np.ndarray, temperature: np.ndarray | None) -> list[Point]:
    start = END - timedelta(hours=HOURS)
    points = []
    for k in range(HOURS):
        at = start + timedelta(hours=k)
        series = [
            ("traffic_vehicles", {}, 500 + 40 * x[k]),
            ("environment_value", {"quantity": "no2"}, 30 + 3 * y[k]),
        ]
        if temperature is not None:
            series.append(("environment_value", {"quantity": "temperature"}, 8 + temperature[k]))
        for indicator, tags, value in series:
            point = Point(indicator).tag("window", "1h").tag("commune", commune).field("value", float(value))
            for key, tag in tags.items():
                point = point.tag(key, tag)
            points.append(point.field("final", True).time(at, WritePrecision.S))
    return points


def _analyse(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", "analyse", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return summary


async def test_a_planted_link_is_published_as_evidence_and_an_unrelated_pair_is_not(
    settings: Settings,
    kafka_admin: KafkaAccess,
    influx_write_target: InfluxTarget,
    influx_target: InfluxTarget,
) -> None:
    run = uuid.uuid4().hex[:8]
    linked, unlinked = f"T{run}A", f"T{run}B"
    rng = np.random.default_rng(int(run, 16))
    a, b = planted_var(rng, HOURS).series, planted_var(rng, HOURS).series
    with (
        InfluxDBClient(
            url=influx_write_target.url, token=influx_write_target.token, org=settings.influx_org
        ) as client,
        client.write_api(write_options=SYNCHRONOUS) as api,
    ):
        points = [
            *_series_points(linked, a["x"], a["y"], a["w"]),
            *_series_points(unlinked, b["w"], b["y"], None),
        ]
        api.write(settings.influx_bucket, settings.influx_org, points)
    starts = await topic_ends(kafka_admin, [CAUSAL_EVIDENCE_TOPIC])

    summary = _analyse("--end", END.isoformat(), "--days", str(DAYS))

    evidence = summary["evidence"]
    assert isinstance(evidence, list)
    assert f"traffic-drives-no2@{linked}" in evidence, summary
    assert f"traffic-drives-no2@{unlinked}" not in evidence, summary
    published = {
        (r.key or b"").decode(): CausalEvidence.model_validate_json(r.value or b"")
        for r in await consumer_records_after(kafka_admin, starts)
    }
    ours = {key: record for key, record in published.items() if run in key}
    assert set(ours) == {f"traffic-drives-no2|{linked}", f"traffic-drives-no2|{unlinked}"}
    found, not_found = ours[f"traffic-drives-no2|{linked}"], ours[f"traffic-drives-no2|{unlinked}"]
    assert (found.status, found.lag_hours, found.sign) == ("evidence", 3, 1)
    assert found.confounders == ["environment_value{quantity=temperature}"]
    assert found.window_end == END and found.window_start == END - timedelta(days=DAYS)
    assert not_found.status == "no_evidence"

    # In InfluxDB, read with the readers' token: one point per record, at the window's end.
    around = (END - timedelta(hours=1), END + timedelta(hours=1))
    begin, stop = (t.isoformat().replace("+00:00", "Z") for t in around)
    query = f"""
from(bucket: {flux_string(settings.influx_evidence_bucket)})
  |> range(start: {begin}, stop: {stop})
  |> filter(fn: (r) => r._measurement == "causal_evidence" and r._field == "p_value")
  |> filter(fn: (r) => r.commune == {flux_string(linked)} or r.commune == {flux_string(unlinked)})
"""
    with InfluxDBClient(url=influx_target.url, token=influx_target.token, org=settings.influx_org) as client:
        rows = [r for table in client.query_api().query(query) for r in table.records]
    assert {(r.values["commune"], r.values["status"]) for r in rows} == {
        (linked, "evidence"),
        (unlinked, "no_evidence"),
    }
    assert {r.values["commune"]: r.get_value() for r in rows}[linked] == pytest.approx(found.p_value)

    # What the operators' page shows, through its own reader and query.
    reader = IndicatorReader(influx_target, settings.influx_evidence_bucket)
    try:
        points = await asyncio.to_thread(reader.evidence, END - timedelta(hours=1))
    finally:
        reader.close()
    shown = {r["commune"]: r for r in current_evidence(points, {}, {}) if r["commune"] in (linked, unlinked)}
    assert (shown[linked]["status"], shown[linked]["lag_hours"], shown[linked]["sign"]) == ("evidence", 3, 1)
    assert shown[unlinked]["status"] == "no_evidence"
    assert shown[linked]["computed_for"] == END.isoformat()


def test_the_analysis_token_may_not_write_the_indicators(settings: Settings) -> None:
    """Least privilege: the analysis reads indicators and writes evidence, nothing else."""
    token = influx_token(settings, influx_provisioning.ANALYSIS)
    assert token is not None, "stack up writes the analysis token"
    point = Point("energy_consumed_kwh").field("value", 1.0)
    with (
        InfluxDBClient(url=settings.influx_url, token=token, org=settings.influx_org) as client,
        client.write_api(write_options=SYNCHRONOUS) as api,
        pytest.raises(InfluxDBError) as refused,
    ):
        api.write(settings.influx_bucket, settings.influx_org, point)
    assert refused.value.response.status in (401, 403, 404), refused.value
