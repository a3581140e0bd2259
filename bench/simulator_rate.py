"""Simulator benchmark: readings/s one process publishes to the local Mosquitto at QoS 1.

Runs the territory simulator (``sensors/simulation_run.py``) without a rate cap, every message
acknowledged by the broker, as the gateway principal, on a topic root of its own under zc-
sandbox/ (nobody subscribes, so the broker only acknowledges): the raw-socket publisher clean
and with faults, and the embeddable paho device client for comparison. Also times the stream
alone (generation without publishing). Prints a table and saves JSON in bench/results/. Target
(devices issue): >= 50 000 readings/s from one process.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime

from machine import describe
from results_file import save_results

from config.settings import Settings
from reference.loader import load_reference
from schemas.mqtt_principals import GATEWAY, SANDBOX_ROOT
from sensors.faults import FaultRates
from sensors.fleet import build_fleet
from sensors.mqtt_publishers import MqttTarget
from sensors.simulation_run import SimulationPlan, run_simulation
from sensors.territory_stream import TerritoryStream
from stack import control
from zerocarbon.component_configs import mqtt_ca_file, mqtt_login, stack_config

FAULTS = FaultRates(
    malformed=0.01, duplicate=0.01, out_of_order=0.01, late=0.01, clock_skew=0.05, offline=0.001
)


def generation_rate(devices: int, readings: int) -> float:
    """Messages/s the territory stream produces, without publishing."""
    reference = load_reference()
    stream = TerritoryStream(
        build_fleet(devices, list(reference.communes.values())), time.time() - 30 * 86400, 1
    )
    start = time.perf_counter()
    for _ in range(readings):
        next(stream)
    return readings / (time.perf_counter() - start)


def publish_rate(
    settings: Settings, devices: int, readings: int, publisher: str, faults: FaultRates
) -> dict[str, object]:
    plan = SimulationPlan(
        devices=devices,
        rate=None,
        count=readings,
        topic_root=f"{SANDBOX_ROOT}/bench-{uuid.uuid4().hex[:8]}",
        faults=faults,
        publisher=publisher,
    )
    gateway = mqtt_login(settings, GATEWAY)  # the simulator publishes for many devices
    target = MqttTarget(
        settings.mqtt_host,
        settings.mqtt_port,
        gateway.username,
        gateway.password,
        ca_file=mqtt_ca_file(settings),
    )
    report = run_simulation(plan, load_reference(), target)
    assert report["acknowledged"] == report["messages"], report
    return {
        "publisher": publisher,
        "faults": faults != FaultRates(),
        "messages": report["messages"],
        "acknowledged": report["acknowledged"],
        "seconds": report["wall_seconds"],
        "messages_per_second": round(report["messages"] / report["wall_seconds"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--readings", type=int, default=500_000)
    args = parser.parse_args()
    settings = Settings()
    control.up(stack_config(settings))
    runs = [
        publish_rate(settings, args.devices, args.readings, "socket", FaultRates()),
        publish_rate(settings, args.devices, args.readings, "socket", FAULTS),
        publish_rate(settings, args.devices, min(args.readings, 50_000), "paho", FaultRates()),
    ]
    generated = round(generation_rate(args.devices, min(args.readings, 200_000)))
    print(f"{'publisher':<10} {'faults':<7} {'messages':>9} {'seconds':>8} {'messages/s':>11}")
    for run in runs:
        print(
            f"{run['publisher']:<10} {run['faults']!s:<7} {run['messages']:>9} {run['seconds']:>8} "
            f"{run['messages_per_second']:>11}"
        )
    print(f"stream alone (no publishing): {generated} messages/s")
    save_results(
        "simulator",
        {
            "when": datetime.now(UTC).isoformat(),
            "machine": describe(),
            "devices": args.devices,
            "runs": runs,
            "generation_only_messages_per_second": generated,
            "target_messages_per_second": 50_000,
        },
    )
    return 0


if __name__ == "__main__":
    from stack import isolated_stack

    isolated_stack.enter()  # the benchmarks' own stack instance, never one a person runs
    raise SystemExit(main())
