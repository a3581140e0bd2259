"""A simulated territory through the whole service: devices publish over MQTT (with malformed
payloads and duplicates injected), the bridge forwards to Kafka, the worker validates. What
validation counted must reconcile with what the simulator says it sent: accepted, dead-
lettered and duplicates, exactly, and received = the sum of the three. Then the sink writes
the indicators, InfluxDB must hold points for the simulated communes, and every panel of the
Grafana dashboards must show something (its Flux query, run as Grafana runs it, returns rows).
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from influxdb_client import InfluxDBClient

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import DEAD_LETTER_TOPIC, INDICATOR_TOPIC, valid_topic
from schemas.families import FAMILIES
from schemas.kafka_principals import SINK as SINK_PRINCIPAL
from schemas.kafka_principals import KafkaAcl, sink_acls
from schemas.local_calendar import ZoneCalendar
from streams.kafka_admin import records_after, start_group_at_end, topic_ends
from tests.grafana_panels import DASHBOARDS, Panel, panels
from tests.integration.worker_runs import start_worker
from tests.kafka_grants import grant, withdraw
from zerocarbon.component_configs import influx_read_target
from zerocarbon.demo import worker_counters
from zerocarbon.processes import spawn_command, stop_child, wait_ready

MESSAGES = 3000


def zerocarbon(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a `zerocarbon` command to completion; its JSON output (the last JSON document)."""
    done = subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", *args], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout[done.stdout.index("{") :])  # type: ignore[no-any-return]


def dashboard_panels() -> list[Panel]:
    return [panel for path in DASHBOARDS for panel in panels(path)]


def totals(counters: dict[str, Any]) -> dict[str, int]:
    return {
        name: sum(counters.get(name, {}).values()) for name in ("accepted", "dead_lettered", "duplicates")
    }


async def test_what_the_devices_sent_is_what_validation_counted(
    settings: Settings, kafka_admin: KafkaAccess, tmp_path: Path
) -> None:
    registry = tmp_path / "reference"
    zerocarbon("simulate", "--devices", "300", "--write-registry", str(registry))
    run = uuid.uuid4().hex[:8]
    bridge_id = f"zc-e2e-{run}"
    worker = start_worker(tmp_path / "worker.log", {"ZC_REFERENCE_DIR": str(registry)})
    bridge_log, sink_log = tmp_path / "bridge.log", tmp_path / "sink.log"
    bridge = spawn_command(["bridge", "--client-id", bridge_id], bridge_log)
    # A sink group of its own from the current end: other modules' backlog is not this test's.
    sink_group = f"zc-e2e-sink-{run}"
    await start_group_at_end(kafka_admin, sink_group, [INDICATOR_TOPIC])
    await grant(settings, SINK_PRINCIPAL, sink_acls(sink_group))  # the sink principal may use it
    sink = spawn_command(["sink"], sink_log, {"ZC_SINK_GROUP": sink_group})
    try:
        wait_ready(bridge, bridge_log)
        wait_ready(sink, sink_log)
        before = totals(worker_counters(settings))
        valid_topics = [valid_topic(name) for name in FAMILIES]
        starts = await topic_ends(kafka_admin, [*valid_topics, DEAD_LETTER_TOPIC])
        report = await asyncio.to_thread(
            zerocarbon,
            "simulate", "--devices", "300", "--count", str(MESSAGES), "--rate", "2000",
            "--seed", str(random.randrange(1 << 30)), "--malformed", "0.03", "--duplicate", "0.03",
            "--out-of-order", "0.02", "--late", "0.02",
        )  # fmt: skip
        sent = report["messages"]  # --count, plus what devices held back (late, out of order)
        assert report["acknowledged"] == sent >= MESSAGES
        expected = report["expected_at_validation"]
        assert expected["dead_lettered"] > 0 and expected["duplicates"] > 0
        deadline = time.monotonic() + 120
        counted = totals(worker_counters(settings))
        while time.monotonic() < deadline:
            counted = totals(worker_counters(settings))
            if sum(counted.values()) - sum(before.values()) >= sent:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # anything beyond would be double counting: give it a chance to show
        after = worker_counters(settings)
        counted = {name: value - before[name] for name, value in totals(after).items()}
        assert counted == expected, f"report {report['per_fault']}"
        assert after["balanced"]
        # The same, as it reached the topics: events on the typed topics (one JSON array per
        # record), dead letters of the validation stage with the malformed payloads.
        written = await records_after(kafka_admin, starts)
        typed = sum(len(json.loads(value)) for topic, value in written if topic in valid_topics)
        letters = [json.loads(value) for topic, value in written if topic == DEAD_LETTER_TOPIC]
        refused = [letter for letter in letters if letter["stage"] == "validation"]
        assert typed == expected["accepted"], (typed, expected)
        assert len(refused) == expected["dead_lettered"] == report["per_fault"]["malformed"]

        # The indicators reach InfluxDB through the sink (a group of its own, from the end of
        # zc.indicators: what it writes is this run's): the hours just simulated, by commune.
        query = f'''from(bucket: "{settings.influx_bucket}") |> range(start: -1d)
  |> filter(fn: (r) => r._measurement == "energy_consumed_kwh" and r.window == "1h" and r._field == "value")
  |> keep(columns: ["commune"]) |> distinct(column: "commune")'''
        communes: set[str] = set()
        reader = influx_read_target(settings)  # as the page and Grafana read: the readers' token
        with InfluxDBClient(url=reader.url, token=reader.token, org=reader.org) as client:
            for _ in range(60):
                tables = client.query_api().query(query)
                communes = {str(r.get_value()) for t in tables for r in t.records}
                if len(communes) >= 10:
                    break
                await asyncio.sleep(1)
        assert len(communes) >= 10, communes  # 300 devices spread over the 28 communes
        # Freshness and completeness per producer and commune, for the simulated producers.
        producers_query = f'''from(bucket: "{settings.influx_bucket}") |> range(start: -1d)
  |> filter(fn: (r) => r._measurement == "producer_completeness_ratio" and r._field == "value")
  |> filter(fn: (r) => r._value > 0.0 and r._value <= 1.0)
  |> keep(columns: ["producer"]) |> distinct(column: "producer")'''
        with InfluxDBClient(url=reader.url, token=reader.token, org=reader.org) as client:
            tables = client.query_api().query(producers_query)
        producers = {str(r.get_value()) for t in tables for r in t.records}
        assert len(producers) >= 3, producers
        # The territory's year to date against its trajectory, summed by the sink process.
        calendar = ZoneCalendar(settings.time_zone)  # the local year begins before 1 January in UTC
        year = datetime.fromtimestamp(calendar.year_start(calendar.year_of(int(time.time()))), UTC)
        since = f"{year:%Y-%m-%dT%H:%M:%SZ}"
        territory_query = f'''from(bucket: "{settings.influx_bucket}") |> range(start: {since})
  |> filter(fn: (r) => r._measurement =~ /^territory_/ and r._field == "value") |> last()'''
        territory: dict[str, float] = {}
        for _ in range(30):
            with InfluxDBClient(url=reader.url, token=reader.token, org=reader.org) as client:
                tables = client.query_api().query(territory_query)
            territory = {r.get_measurement(): float(r.get_value()) for t in tables for r in t.records}
            if len(territory) == 3:
                break
            await asyncio.sleep(1)
        assert territory.get("territory_emissions_kgco2e", 0) > 0, territory
        assert territory["territory_trajectory_target_kgco2e"] > 0
        # Every panel of the Grafana dashboards shows something, read as Grafana reads.
        empty = [f"{p.dashboard}: {p.title}" for p in dashboard_panels()]
        for _ in range(30):
            with InfluxDBClient(url=reader.url, token=reader.token, org=reader.org) as client:
                empty = [
                    f"{p.dashboard}: {p.title}"
                    for p in dashboard_panels()
                    if not client.query_api().query(p.runnable(reader.bucket, reader.minute_bucket))
                ]
            if not empty:
                break
            await asyncio.sleep(1)
        assert not empty, f"panels whose query returns nothing: {empty}"
        status = json.loads((settings.stack_home / "sink" / "influx-sink.status.json").read_text())
        assert status["pid"] == sink.pid
        assert status["points_written"] > 0 and status["rejected_dead_lettered"] == 0, status
    finally:
        stop_child(bridge)
        stop_child(sink)
        stop_child(worker)
        await withdraw(settings, SINK_PRINCIPAL, own_group(sink_group))  # the sink's topics stay granted
        subprocess.run(
            [sys.executable, "-m", "zerocarbon.cli", "bridge", "--forget-session", "--client-id", bridge_id],
            capture_output=True,
            timeout=60,
        )


def own_group(group: str) -> tuple[KafkaAcl, ...]:
    """What the test granted beyond the sink principal's own rights: its consumer group only
    (``sink_acls`` also names the topics, which the principal holds anyway and keeps)."""
    return (KafkaAcl("group", group, "read"),)
