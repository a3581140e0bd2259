"""`zerocarbon demo`: the whole path on the real local stack, with a result one can see.

Brings the stack up, starts the bridge, the faust worker, the sink and the operators' page
(`zerocarbon view`, whose URL it prints first) and publishes over MQTT as devices would: a
household meter's readings, an air-quality and a car-park reading, one broken reading. It
waits until validation has accounted for each and InfluxDB's hour of the meter's series has
grown by exactly what the meter sent; then a simulated territory publishes for a few seconds
and the demo prints what validation made of it and today's emissions per commune.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from config.settings import Settings
from schemas.catalogue import INDICATOR_TOPIC
from schemas.device_topics import device_topic
from schemas.kafka_principals import SINK
from schemas.local_calendar import ZoneCalendar
from schemas.mqtt_principals import GATEWAY
from sensors.mqtt_publish import publish_payloads
from sinks.indicator_sink import read_sink_statuses
from sinks.influx_readback import read_indicator
from stack import control
from streams.kafka_admin import committed_offsets, topic_ends
from zerocarbon.component_configs import (
    influx_read_target,
    kafka_access,
    mqtt_ca_file,
    mqtt_login,
    sink_status_dir,
    stack_config,
    worker_url,
    worker_web_token,
)
from zerocarbon.demo_territory import (
    first_day,
    registry_for_demo,
    simulate_territory,
    today_by_commune,
    wait_until_counted,
)
from zerocarbon.kafka_catalogue import declare_catalogue
from zerocarbon.processes import spawn_command, stop_child, wait_ready

DEMO_SERIES = {"carrier": "electricity", "commune": "17300", "sector": "residential"}
DEMO_METER = "elec-17300-0001"
INTERVAL = timedelta(minutes=15)


def demo_events(run_id: str, readings: int, at: datetime) -> tuple[list[tuple[str, bytes]], float]:
    """``readings`` quarter-hour readings of a La Rochelle household meter ending at ``at``,
    an air-quality and a car-park reading, and one broken reading; and the kWh the meter's
    valid readings add to its series' hour."""
    producer = f"demo-{run_id}"
    base = {"producer_id": producer, "event_time": at.isoformat(), "commune": "17300"}
    energy: list[dict[str, Any]] = [
        base | {
            "event_id": f"{run_id}-e{k}", "meter_id": DEMO_METER, "sector": "residential",
            "carrier": "electricity", "quantity": 400 + 10 * k, "unit": "Wh", "kind": "interval",
            "interval_start": (at - INTERVAL).isoformat(),
        }
        for k in range(readings)
    ]  # fmt: skip
    air = base | {
        "event_id": f"{run_id}-a1", "sensor_id": "aq-17300-0001", "quantity": "no2", "value": 23.5,
        "unit": "ug/m3",
    }  # fmt: skip
    parking = base | {
        "event_id": f"{run_id}-p1", "device_id": "parking-17300-0001", "kind": "parking_occupancy",
        "occupied_spot_number": 312, "total_spot_number": 400,
    }  # fmt: skip
    broken = energy[0] | {"event_id": f"{run_id}-broken", "quantity": -5}
    meter_topic = device_topic("17300", "energy", DEMO_METER)
    messages = [(meter_topic, json.dumps(event).encode()) for event in energy]
    messages += [
        (device_topic("17300", "environment", "aq-17300-0001"), json.dumps(air).encode()),
        (device_topic("17300", "mobility", "parking-17300-0001"), json.dumps(parking).encode()),
        (meter_topic, json.dumps(broken).encode()),
    ]
    return messages, sum(400 + 10 * k for k in range(readings)) / 1000


def worker_counters(settings: Settings) -> dict[str, Any]:
    """The worker's validation and indicator counters, from its page's ``/counters`` (showing
    the worker's token when it has one)."""
    request = urllib.request.Request(f"{worker_url(settings)}/counters")
    token = worker_web_token(settings)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as answer:
        counters: dict[str, Any] = json.loads(answer.read())
    return counters


OUTCOMES = ("accepted", "duplicates", "dead_lettered")


def validation_totals(counters: dict[str, Any]) -> dict[str, int]:
    """Readings received and each outcome's total over every producer key of ``/counters``."""
    totals = {outcome: sum(counters.get(outcome, {}).values()) for outcome in OUTCOMES}
    return {"received": int(counters.get("received", 0)), **totals}


def wait_for_validation(
    settings: Settings, before: dict[str, int], expected: int, timeout: float
) -> dict[str, int]:
    """Poll the worker's counters until ``expected`` readings more than ``before`` are accounted
    for; what was added to each total. (Counters are keyed by the registry's producers, not by
    the demo's own producer id: the demo's readings are told apart as the difference.)"""
    deadline = time.monotonic() + timeout
    added = dict.fromkeys(before, 0)
    while time.monotonic() < deadline:
        now = validation_totals(worker_counters(settings))
        added = {key: now[key] - before[key] for key in before}
        if sum(added[outcome] for outcome in OUTCOMES) >= expected:
            break
        time.sleep(0.5)
    return added


def updates_not_yet_written(settings: Settings) -> int:
    """Indicator updates on Kafka that the sink has not made durable, plus points it holds on
    disk. The worker restores its windows from its checkpoint: what it published last time
    may not be in InfluxDB yet (a run without a sink, a sink stopped early), and the sink
    writes it while the demo runs; the demo's hour must be read once it is."""
    kafka = kafka_access(settings, SINK)  # the sink's own login may read its group's positions

    async def behind() -> int:
        ends = await topic_ends(kafka, [INDICATOR_TOPIC])
        committed = await committed_offsets(kafka, settings.sink_group)
        return sum(max(0, end - max(0, committed.get(tp, 0))) for tp, end in ends.items())

    statuses = [s for s in read_sink_statuses(sink_status_dir(settings)) if s.get("fresh")]
    on_disk = sum(int(s.get("buffered_disk_points") or 0) for s in statuses)
    return asyncio.run(behind()) + on_disk


def wait_for_sink(settings: Settings, timeout: float) -> int:
    """Poll until the sink has written every indicator update already on Kafka; how many it
    still had not when ``timeout`` ran out (0: caught up)."""
    deadline = time.monotonic() + timeout
    while (left := updates_not_yet_written(settings)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def hour_energy_kwh(settings: Settings, hour: datetime) -> float:
    """The demo series' energy for ``hour`` as InfluxDB holds it now (0 before its first point)."""
    target = influx_read_target(settings)
    stored = read_indicator(target, "energy_consumed_kwh", "1h", DEMO_SERIES, hour, hour + timedelta(hours=1))
    return stored[-1].value if stored else 0.0


def wait_for_hour_energy(settings: Settings, hour: datetime, at_least: float, timeout: float) -> float:
    """Poll InfluxDB until the demo series' hour holds ``at_least`` kWh; the last value read."""
    deadline = time.monotonic() + timeout
    value = hour_energy_kwh(settings, hour)
    while value < at_least - 1e-9 and time.monotonic() < deadline:
        time.sleep(0.5)
        value = hour_energy_kwh(settings, hour)
    return value


def start_view(settings: Settings, view: subprocess.Popen[bytes], log: Path, offset: int) -> None:
    """Wait for the operators' page and print its URL (there is no browser to open here: the
    URL is how the demo opens it). The page is a window on the demo, not part of what it
    checks: if it does not start (its port taken...), the demo says so and goes on."""
    url = f"http://{settings.view_host}:{settings.view_port}/"
    try:
        wait_ready(view, log, offset)
    except (RuntimeError, TimeoutError) as exc:
        print(f"[demo] the operators' view did not start ({str(exc).splitlines()[0]}); see {log}")
        return
    print(f"[demo] operators' live view: {url} (open it in a browser while the demo runs)", flush=True)


def run_demo(settings: Settings, readings: int) -> int:
    calendar = ZoneCalendar(settings.time_zone)  # the worker's days: "today" is its local day
    control.up(stack_config(settings))
    declare_catalogue(settings)  # as `zerocarbon stack up` does: the services create no topic
    logs = settings.stack_home / "demo"
    bridge_log, worker_log, sink_log = logs / "bridge.log", logs / "worker.log", logs / "sink.log"
    view_log = logs / "view.log"
    offsets = {p: p.stat().st_size if p.exists() else 0 for p in (bridge_log, worker_log, sink_log, view_log)}
    # The worker knows the simulated fleet: a copy of the reference data with it registered.
    registry = registry_for_demo(settings, logs / "reference")
    bridge = spawn_command(["bridge"], bridge_log)
    worker = spawn_command(["worker"], worker_log, {"ZC_REFERENCE_DIR": str(registry)})
    sink = spawn_command(["sink"], sink_log)
    view = spawn_command(["view"], view_log)
    try:
        start_view(settings, view, view_log, offsets[view_log])
        wait_ready(bridge, bridge_log, offsets[bridge_log])
        wait_ready(worker, worker_log, offsets[worker_log])
        wait_ready(sink, sink_log, offsets[sink_log])
        run_id = uuid.uuid4().hex[:8]
        at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
        # An interval reading counts in the window where its interval starts.
        hour = (at - INTERVAL).replace(minute=0, second=0)
        events, sent_kwh = demo_events(run_id, readings, at)
        if unwritten := wait_for_sink(settings, timeout=60):
            print(f"[demo] the sink has still not written {unwritten} earlier indicator updates (see "
                  f"{sink_log}): the hour read before publishing may miss them")  # fmt: skip
        before_kwh = hour_energy_kwh(settings, hour)
        counted_before = validation_totals(worker_counters(settings))
        t0 = time.monotonic()
        # As a gateway would (the demo's meters have no credential of their own).
        gateway = mqtt_login(settings, GATEWAY)
        acked = publish_payloads(
            settings.mqtt_host, settings.mqtt_port, events, gateway, ca_file=mqtt_ca_file(settings)
        )
        counted = wait_for_validation(settings, counted_before, len(events), timeout=60)
        reasons = worker_counters(settings).get("reasons")
        after_kwh = wait_for_hour_energy(settings, hour, before_kwh + sent_kwh, timeout=60)
        elapsed = time.monotonic() - t0
        before = worker_counters(settings)["received"]
        report = simulate_territory(settings, seed=int(time.time()))
        territory = wait_until_counted(lambda: worker_counters(settings), before, report["messages"], 60)
        since = first_day(report, calendar)
        by_commune = today_by_commune(settings, timeout=45, since=since)
    finally:
        stop_child(bridge)
        stop_child(worker)
        stop_child(sink)
        stop_child(view)
    accepted, dead = counted["accepted"], counted["dead_lettered"]
    print(
        f"[demo] published {acked}/{len(events)} events over MQTT on zc/<commune>/<family>/<device> "
        f"(QoS 1, acknowledged): {readings} readings of meter {DEMO_METER} ({sent_kwh:.3f} kWh), "
        "an air-quality and a car-park reading, and one broken reading"
    )
    print(
        f"[demo] validation: {accepted} onto zc.valid.*, {dead} dead-lettered on zc.deadletter "
        f"(reasons so far: {reasons})"
    )
    added = after_kwh - before_kwh
    print(
        f"[demo] InfluxDB, La Rochelle, residential electricity, hour from {hour:%Y-%m-%dT%H:%M}Z: "
        f"{before_kwh:.3f} -> {after_kwh:.3f} kWh (+{added:.3f}, the meter's readings), "
        f"visible {elapsed:.1f}s after publishing"
    )
    expected = report["expected_at_validation"]
    families = ", ".join(f"{family} {sent['messages']}" for family, sent in report["per_family"].items())
    print(
        f"[demo] simulated territory: {report['devices']} devices in the 28 communes sent "
        f"{report['messages']} readings in {report['publish_seconds']} s "
        f"({families}), with "
        f"{report['per_fault']['malformed']} malformed, {report['per_fault']['duplicate']} duplicated, "
        f"{report['per_fault']['late']} late"
    )
    print(f"[demo] the simulator expects at validation: {expected}")
    print(f"[demo] the worker counted so far (all producers): received {territory['received']}, "
          f"reasons {territory['reasons']}")  # fmt: skip
    since_date = calendar.date_of(int(since.timestamp()))
    days = (
        "today"
        if since_date == calendar.date_of(int(time.time()))
        else f"since {since_date} ({calendar.name})"
    )
    print(f"[demo] {days} by commune, from InfluxDB (1-day windows):")
    print(f"[demo]   {'commune':<8} {'kgCO2e':>12} {'renewable share':>16}")
    for commune, emissions, share in by_commune[:10]:
        shown = f"{share:.1%}" if share is not None else "—"
        print(f"[demo]   {commune:<8} {emissions:>12.1f} {shown:>16}")
    print(
        f"[demo] logs: {bridge_log} {worker_log} {sink_log} {view_log}; "
        "stop the stack with `zerocarbon stack down`"
    )
    print(
        "[demo] to watch the territory again: run `zerocarbon bridge`, `worker`, `sink` and `view` "
        "(docs/operators-view.md)"
    )
    path_ok = accepted == len(events) - 1 and dead == 1 and abs(added - sent_kwh) < 1e-6
    territory_ok = territory["received"] - before >= report["messages"] and bool(by_commune)
    return 0 if path_ok and territory_ok else 1
