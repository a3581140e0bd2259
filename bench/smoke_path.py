"""Smoke-path benchmark: MQTT publish to visible in InfluxDB, one reading per Kafka message.

A baseline for the later end-to-end benchmark: the smoke agent writes one point per
message, so this measures the plumbing, not the batched design. Prints a table and saves
JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime

# Run as a script, so bench/ itself is on sys.path.
from machine import describe
from results_file import save_results

from config.settings import Settings
from sensors.mqtt_publish import publish_readings
from stack import control
from zerocarbon.demo import BRIDGE_READY, WORKER_READY, demo_readings, wait_for_readings
from zerocarbon.processes import spawn_command, stop_child, wait_for_log


def run(readings: int) -> dict[str, object]:
    settings = Settings()
    control.up(settings)
    logs = settings.stack_home / "bench"
    bridge = spawn_command(["bridge"], logs / "bridge.log")
    worker = spawn_command(["worker"], logs / "worker.log")
    try:
        wait_for_log(bridge, logs / "bridge.log", BRIDGE_READY, timeout=60)
        wait_for_log(worker, logs / "worker.log", WORKER_READY, timeout=120)
        run_id = uuid.uuid4().hex[:8]
        sent = demo_readings(run_id, readings)
        t0 = time.perf_counter()
        acked = publish_readings(settings.mqtt_host, settings.mqtt_port, settings.smoke_mqtt_topic, sent)
        t_published = time.perf_counter() - t0
        stored = wait_for_readings(settings, f"demo-{run_id}-", readings, timeout=600)
        t_visible = time.perf_counter() - t0
    finally:
        stop_child(bridge)
        stop_child(worker)
    return {
        "benchmark": "smoke_path",
        "when": datetime.now(UTC).isoformat(),
        "machine": describe(),
        "readings": readings,
        "acknowledged_by_mqtt": acked,
        "visible_in_influxdb": len(stored),
        "publish_seconds": round(t_published, 3),
        "publish_to_all_visible_seconds": round(t_visible, 3),
        "end_to_end_readings_per_second": round(len(stored) / t_visible, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=5000)
    args = parser.parse_args()
    result = run(args.readings)
    for key, value in result.items():
        if key != "machine":
            print(f"{key:<34} {value}")
    save_results("smoke_path", result)
    return 0 if result["visible_in_influxdb"] == args.readings else 1


if __name__ == "__main__":
    from stack import isolated_stack

    isolated_stack.enter()  # the benchmarks' own stack instance, never one a person runs
    sys.exit(main())
