"""`zerocarbon demo`: the whole path on the real local stack, with a result one can see.

Brings the stack up, starts the bridge, the faust worker, the sink and the operators' page
(`zerocarbon view`, whose URL it prints first), publishes readings over MQTT as devices
would, waits until InfluxDB returns every one of them through a Flux query, and prints them;
then a simulated territory publishes for a few seconds and the demo prints what validation
made of it and today's emissions per commune.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bridge.topic_tree import device_topic
from config.settings import Settings
from schemas.smoke_reading import SmokeReading
from sensors.mqtt_publish import publish_payloads, publish_readings
from sinks.influx_readback import StoredIndicator, StoredReading, read_indicator, read_smoke_readings
from stack import control
from zerocarbon.demo_territory import (
    registry_for_demo,
    simulate_territory,
    today_by_commune,
    wait_until_counted,
)
from zerocarbon.processes import spawn_command, stop_child, wait_for_log

BRIDGE_READY = r"subscribed to .* at QoS 1"
WORKER_READY = r"\[\^Worker\]: Ready"
SINK_READY = r"sink ready: "
VIEW_READY = r"operators' view ready: "


def demo_readings(run_id: str, count: int) -> list[SmokeReading]:
    """``count`` readings from three demo devices, one second apart."""
    now = datetime.now(UTC).replace(microsecond=0)
    return [
        SmokeReading(
            device_id=f"demo-{run_id}-meter{k % 3}",
            value=round(100 + 7.5 * k, 2),
            time=datetime.fromtimestamp(now.timestamp() - (count - k), UTC),
        )
        for k in range(count)
    ]


def wait_for_readings(
    settings: Settings, device_prefix: str, expected: int, timeout: float
) -> list[StoredReading]:
    """Poll InfluxDB until ``expected`` readings of these devices are visible."""
    deadline = time.monotonic() + timeout
    stored: list[StoredReading] = []
    while time.monotonic() < deadline:
        stored = read_smoke_readings(settings, device_prefix)
        if len(stored) >= expected:
            break
        time.sleep(0.5)
    return stored


def demo_family_events(run_id: str) -> list[tuple[str, bytes]]:
    """Events of each family on the device topic tree, one of them broken on purpose."""
    now = datetime.now(UTC).replace(microsecond=0)
    producer = f"demo-{run_id}"
    energy = {
        "event_id": f"{run_id}-e1", "producer_id": producer, "event_time": now.isoformat(),
        "meter_id": "elec-17300-0001", "commune": "17300", "sector": "residential",
        "carrier": "electricity", "quantity": 420, "unit": "Wh", "kind": "interval",
        "interval_start": datetime.fromtimestamp(now.timestamp() - 900, UTC).isoformat(),
    }  # fmt: skip
    air = {
        "event_id": f"{run_id}-a1", "producer_id": producer, "event_time": now.isoformat(),
        "sensor_id": "aq-17300-0001", "commune": "17300", "quantity": "no2", "value": 23.5, "unit": "ug/m3",
    }  # fmt: skip
    parking = {
        "event_id": f"{run_id}-p1", "producer_id": producer, "event_time": now.isoformat(),
        "device_id": "parking-17300-0001", "commune": "17300", "kind": "parking_occupancy",
        "occupied_spot_number": 312, "total_spot_number": 400,
    }  # fmt: skip
    broken = dict(energy, event_id=f"{run_id}-e2", quantity=-5)
    return [
        (device_topic("17300", "energy", "elec-17300-0001"), json.dumps(energy).encode()),
        (device_topic("17300", "environment", "aq-17300-0001"), json.dumps(air).encode()),
        (device_topic("17300", "mobility", "parking-17300-0001"), json.dumps(parking).encode()),
        (device_topic("17300", "energy", "elec-17300-0001"), json.dumps(broken).encode()),
    ]


def worker_counters(settings: Settings) -> dict[str, Any]:
    url = f"http://{settings.bind_host}:{settings.worker_web_port}/counters"
    with urllib.request.urlopen(url, timeout=5) as answer:
        counters: dict[str, Any] = json.loads(answer.read())
    return counters


def wait_for_validation(settings: Settings, producer: str, expected: int, timeout: float) -> dict[str, Any]:
    """Poll the worker's counters until ``expected`` events of ``producer`` are accounted for."""
    deadline = time.monotonic() + timeout
    counters: dict[str, Any] = {}
    while time.monotonic() < deadline:
        counters = worker_counters(settings)
        seen = sum(counters[k].get(producer, 0) for k in ("accepted", "duplicates", "dead_lettered"))
        if seen >= expected:
            break
        time.sleep(0.5)
    return counters


DEMO_SERIES = {"carrier": "electricity", "commune": "17300", "sector": "residential"}


def read_current_hour(settings: Settings, timeout: float) -> list[tuple[str, str, list[StoredIndicator]]]:
    """This hour's energy and emissions of the demo meter's series, as InfluxDB holds them."""
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    deadline = time.monotonic() + timeout
    out: list[tuple[str, str, list[StoredIndicator]]] = []
    while time.monotonic() < deadline:
        out = [
            (name, unit, read_indicator(settings, name, "1h", DEMO_SERIES, hour, hour + timedelta(hours=1)))
            for name, unit in (("energy_consumed_kwh", "kWh"), ("emissions_kgco2e", "kgCO2e"))
        ]
        if all(stored for _, _, stored in out):
            break
        time.sleep(1.0)
    return out


def start_view(settings: Settings, view: subprocess.Popen[bytes], log: Path, offset: int) -> None:
    """Wait for the operators' page and print its URL (there is no browser to open here: the
    URL is how the demo opens it). The page is a window on the demo, not part of what it
    checks: if it does not start (its port taken...), the demo says so and goes on."""
    url = f"http://{settings.view_host}:{settings.view_port}/"
    try:
        wait_for_log(view, log, VIEW_READY, timeout=30, offset=offset)
    except (RuntimeError, TimeoutError) as exc:
        print(f"[demo] the operators' view did not start ({str(exc).splitlines()[0]}); see {log}")
        return
    print(f"[demo] operators' live view: {url} (open it in a browser while the demo runs)", flush=True)


def run_demo(settings: Settings, readings: int) -> int:
    control.up(settings)
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
        wait_for_log(bridge, bridge_log, BRIDGE_READY, timeout=60, offset=offsets[bridge_log])
        wait_for_log(worker, worker_log, WORKER_READY, timeout=120, offset=offsets[worker_log])
        wait_for_log(sink, sink_log, SINK_READY, timeout=60, offset=offsets[sink_log])
        run_id = uuid.uuid4().hex[:8]
        sent = demo_readings(run_id, readings)
        t0 = time.monotonic()
        acked = publish_readings(settings.mqtt_host, settings.mqtt_port, settings.smoke_mqtt_topic, sent)
        print(f"[demo] published {acked}/{len(sent)} readings over MQTT (QoS 1, acknowledged)")
        stored = wait_for_readings(settings, f"demo-{run_id}-", len(sent), timeout=60)
        elapsed = time.monotonic() - t0
        events = demo_family_events(run_id)
        publish_payloads(settings.mqtt_host, settings.mqtt_port, events)
        counters = wait_for_validation(settings, f"demo-{run_id}", len(events), timeout=60)
        hour_now = read_current_hour(settings, timeout=15)
        before = worker_counters(settings)["received"]
        report = simulate_territory(settings, seed=int(time.time()))
        territory = wait_until_counted(lambda: worker_counters(settings), before, report["messages"], 60)
        by_commune = today_by_commune(settings, timeout=45)
    finally:
        stop_child(bridge)
        stop_child(worker)
        stop_child(sink)
        stop_child(view)
    print(f"[demo] InfluxDB returned {len(stored)}/{len(sent)} readings via Flux in {elapsed:.1f}s")
    print(f"{'device':<26} {'time (UTC)':<26} {'value':>8}")
    for r in stored:
        print(f"{r.device_id:<26} {r.time.isoformat():<26} {r.value:>8.2f}")
    producer = f"demo-{run_id}"
    accepted = counters.get("accepted", {}).get(producer, 0)
    dead = counters.get("dead_lettered", {}).get(producer, 0)
    print(
        f"[demo] {len(events)} events on zc/<commune>/<family>/<device>: {accepted} validated onto "
        f"zc.valid.*, {dead} dead-lettered on zc.deadletter (reasons so far: {counters.get('reasons')})"
    )
    for name, unit, points in hour_now:
        value = f"{points[-1].value:.4f} {unit}" if points else "(not yet flushed)"
        print(f"[demo] InfluxDB, this hour, La Rochelle, residential electricity: {name} = {value}")
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
    print("[demo] today by commune, from InfluxDB (1-day windows):")
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
    smoke_ok = len(stored) == len(sent) and accepted == len(events) - 1 and dead == 1
    territory_ok = territory["received"] - before >= report["messages"] and bool(by_commune)
    return 0 if smoke_ok and territory_ok else 1
