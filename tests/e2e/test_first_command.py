"""The README's first command, `make demo`, run as a newcomer runs it, its figures read back.

It runs against the suite's isolated stack (tests/conftest.py): the same command, other ports.
What it prints must be what InfluxDB holds: the hour its meter's readings went into, grown by
exactly what the meter sent, and today's emissions of every commune it lists.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from influxdb_client import InfluxDBClient

from bridge.mqtt_sessions import forget_session
from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.local_calendar import ZoneCalendar
from schemas.mqtt_principals import BRIDGE
from tests.integration.golden_meters import GoldenMeter, produce_raw
from tests.integration.worker_runs import start_worker, wait_counted
from zerocarbon.component_configs import influx_read_target, mqtt_ca_file, mqtt_login
from zerocarbon.demo import DEMO_METER, updates_not_yet_written, worker_counters
from zerocarbon.processes import stop_child

REPO = Path(__file__).resolve().parents[2]
README_COMMAND = ["make", "demo"]

PUBLISHED = re.compile(r"^\[demo\] published (\d+)/(\d+) events .*\((\d+\.\d{3}) kWh\)", re.M)
VALIDATED = re.compile(r"^\[demo\] validation: (\d+) onto zc.valid.\*, (\d+) dead-lettered", re.M)
HOUR = re.compile(
    r"^\[demo\] InfluxDB, La Rochelle, residential electricity, hour from (\S+)Z: "
    r"(\d+\.\d{3}) -> (\d+\.\d{3}) kWh \(\+(\d+\.\d{3})",
    re.M,
)
SINCE = re.compile(r"^\[demo\] since (\d{4}-\d{2}-\d{2}) \(([^)]+)\) by commune", re.M)
COMMUNE_ROW = re.compile(r"^\[demo\]\s+(\d{5})\s+(-?\d+\.\d)\s+(\S+)$", re.M)


def _query(settings: Settings, flux: str) -> list[dict[str, object]]:
    target = influx_read_target(settings)  # what the demo itself reads with: the readers' token
    with InfluxDBClient(url=target.url, token=target.token, org=target.org) as client:
        return [record.values for table in client.query_api().query(flux) for record in table.records]


def _hour_energy(settings: Settings, hour: str) -> float:
    """La Rochelle's residential electricity in the 1-hour window starting at ``hour`` (UTC)."""
    flux = f'''from(bucket: "{settings.influx_bucket}")
  |> range(start: {hour}:00Z, stop: {hour}:01Z)
  |> filter(fn: (r) => r._measurement == "energy_consumed_kwh" and r.window == "1h" and r._field == "value")
  |> filter(fn: (r) => r.commune == "17300" and r.sector == "residential" and r.carrier == "electricity")'''
    return sum(float(str(r["_value"])) for r in _query(settings, flux))


def _emissions_since(settings: Settings, out: str) -> dict[str, float]:
    """Each commune's emissions in the 1-day windows the demo printed (today, or since the day
    its simulation started, just after midnight), summed over its series: local days of the
    worker's zone, begun at local midnight."""
    since = SINCE.search(out)
    calendar = ZoneCalendar(since.group(2) if since else settings.time_zone)
    local = date.fromisoformat(since.group(1)) if since else calendar.date_of(int(time.time()))
    day = datetime.fromtimestamp(calendar.bounds_of(local)[0], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    flux = f'''from(bucket: "{settings.influx_bucket}") |> range(start: {day})
  |> filter(fn: (r) => r._measurement == "emissions_kgco2e" and r.window == "1d" and r._field == "value")
  |> group(columns: ["commune"]) |> sum()'''
    return {str(r["commune"]): float(r["_value"]) for r in _query(settings, flux)}


def _forget_the_bridge_session(settings: Settings) -> None:
    """A newcomer's Mosquitto holds nothing for the service's bridge. This one is shared with
    the benchmarks and the other tests, which publish while no service bridge is connected:
    Mosquitto queues it all for the bridge's persistent session, and the demo would count it
    with its own readings. Forgotten after the demo too: left behind, the session queued every
    reading the later tests published (763 000 messages, 273 MB in Mosquitto by a CI's end)."""
    forget_session(
        settings.mqtt_host, settings.mqtt_port, settings.bridge_client_id,
        mqtt_login(settings, BRIDGE), ca_file=mqtt_ca_file(settings),
    )  # fmt: skip


def _counted_without_a_sink(settings: Settings, kafka: KafkaAccess, log: Path) -> None:
    """An earlier run whose updates no sink wrote (a CI's fault test runs a worker alone):
    a worker counts readings of La Rochelle's residential electricity into the hours the demo
    may read (it starts 15 min before it publishes, a minute or so from now), publishes its
    updates and checkpoints them. The demo's worker starts from those windows; its hour in
    InfluxDB must not grow by them as if the demo's meter had sent them (a CI's demo read
    0.000 -> 7.707 kWh for 5.460 sent)."""
    now, meter = datetime.now(UTC).replace(microsecond=0), GoldenMeter(DEMO_METER, "17300", "residential")
    hours = sorted({(now - timedelta(minutes=m)).replace(minute=0, second=0) for m in (15, 10)})
    run = uuid.uuid4().hex[:8]
    events = [
        {
            "event_id": f"no-sink-{run}-{k}", "producer_id": "golden-tests",
            "event_time": min(hour + timedelta(minutes=15), now).isoformat(), "meter_id": DEMO_METER,
            "commune": "17300", "sector": "residential", "carrier": "electricity",
            "quantity": 125, "unit": "Wh", "kind": "interval", "interval_start": hour.isoformat(),
        }
        for k, hour in enumerate(hours)
    ]  # fmt: skip
    worker = start_worker(log)
    try:
        counted = worker_counters(settings)["indicators"].get("counted", 0)
        asyncio.run(produce_raw(kafka, meter, [json.dumps(events).encode()]))
        asyncio.run(wait_counted(settings, counted + len(events)))
        time.sleep(3)  # the next flush publishes the hours' updates
    finally:
        stop_child(worker)  # and checkpoints them


def test_make_demo_prints_what_influxdb_holds(
    settings: Settings, kafka_admin: KafkaAccess, tmp_path: Path
) -> None:
    _counted_without_a_sink(settings, kafka_admin, tmp_path / "worker.log")
    assert updates_not_yet_written(settings) > 0  # the demo's sink finds them on Kafka
    _forget_the_bridge_session(settings)
    try:
        done = subprocess.run(
            README_COMMAND, cwd=REPO, capture_output=True, text=True, timeout=900, check=False
        )
    finally:
        _forget_the_bridge_session(settings)
    out = done.stdout
    assert done.returncode == 0, (
        f"`make demo` failed ({done.returncode}):\n{out[-4000:]}\n{done.stderr[-4000:]}"
    )

    published, validated, hour = PUBLISHED.search(out), VALIDATED.search(out), HOUR.search(out)
    assert published and validated and hour, out
    sent, total, sent_kwh = int(published.group(1)), int(published.group(2)), float(published.group(3))
    assert sent == total > 2, out
    assert (int(validated.group(1)), int(validated.group(2))) == (total - 1, 1), out
    before, after, added = (float(hour.group(k)) for k in (2, 3, 4))
    assert f"{after - before:.3f}" == f"{added:.3f}" == f"{sent_kwh:.3f}", out
    # The demo's meter reports intervals, which nothing takes back: its kWh stay in that hour
    # whatever the territory simulated afterwards does to it. The hour as a whole need not
    # stay at `after`: a simulated meter's late index moves part of an earlier delta to the
    # hour it belongs to (docs/indicators.md, late indexes), and an hour can lose some (a CI
    # run read less than `after` so). Every counted delta is positive: the hour holds the demo's.
    assert _hour_energy(settings, hour.group(1)) >= added - 1e-6, out

    communes = COMMUNE_ROW.findall(out)
    assert len(communes) >= 10, out
    emissions = _emissions_since(settings, out)
    for commune, kg, _share in communes:
        # A commune with renewable production only has no emissions series: the demo prints 0.0.
        assert f"{emissions.get(commune, 0.0):.1f}" == kg, (commune, kg, emissions.get(commune))
