"""`zerocarbon demo`: the whole path on the real local stack, with a result one can see.

Brings the stack up, starts the bridge and the faust worker, publishes readings over MQTT
as devices would, waits until InfluxDB returns every one of them through a Flux query,
and prints them. It grows with the service: each landed stage joins this journey.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from schemas.smoke_reading import SmokeReading
from sensors.mqtt_publish import publish_readings
from sinks.influx_readback import StoredReading, read_smoke_readings
from stack import control
from zerocarbon.processes import spawn_command, stop_child, wait_for_log
from zerocarbon.settings import Settings

BRIDGE_READY = r"subscribed to .* at QoS 1"
WORKER_READY = r"\[\^Worker\]: Ready"


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


def run_demo(settings: Settings, readings: int) -> int:
    control.up(settings)
    logs = settings.stack_home / "demo"
    bridge_log, worker_log = logs / "bridge.log", logs / "worker.log"
    offsets = {p: p.stat().st_size if p.exists() else 0 for p in (bridge_log, worker_log)}
    bridge = spawn_command(["bridge"], bridge_log)
    worker = spawn_command(["worker"], worker_log)
    try:
        wait_for_log(bridge, bridge_log, BRIDGE_READY, timeout=60, offset=offsets[bridge_log])
        wait_for_log(worker, worker_log, WORKER_READY, timeout=120, offset=offsets[worker_log])
        run_id = uuid.uuid4().hex[:8]
        sent = demo_readings(run_id, readings)
        t0 = time.monotonic()
        acked = publish_readings(settings.mqtt_host, settings.mqtt_port, settings.smoke_mqtt_topic, sent)
        print(f"[demo] published {acked}/{len(sent)} readings over MQTT (QoS 1, acknowledged)")
        stored = wait_for_readings(settings, f"demo-{run_id}-", len(sent), timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        stop_child(bridge)
        stop_child(worker)
    print(f"[demo] InfluxDB returned {len(stored)}/{len(sent)} readings via Flux in {elapsed:.1f}s")
    print(f"{'device':<26} {'time (UTC)':<26} {'value':>8}")
    for r in stored:
        print(f"{r.device_id:<26} {r.time.isoformat():<26} {r.value:>8.2f}")
    print(f"[demo] logs: {bridge_log} {worker_log}; stop the stack with `zerocarbon stack down`")
    return 0 if len(stored) == len(sent) else 1
