"""Bridge benchmark: sustained readings/s from MQTT publish to Kafka acknowledgement.

Publishes N QoS 1 readings with sensors/qos1_socket_publisher.py processes to the local
Mosquitto as fast as they go, authenticated as the gateway principal (the bridge as its own).
``live``: with `zerocarbon bridge` running, the rate is N divided by the time from the first
publish to the bridge reporting every reading forwarded (Kafka confirmed). ``backlog``: the
readings are queued first, then the bridge drains them (the bridge alone). Also reports the
bridge's CPU seconds per million readings and its peak RSS. Prints a table and saves JSON in
bench/results/. Target (bridge issue): >= 30 000 readings/s on 2 cores.

The bridge writes its counters once a second, so the end of a run is known within a second:
the whole-run rate takes the later bound (it can only understate), and the steady rate is the
slope between the first and last status written while the bridge was forwarding, each stamped
by the bridge itself. Runs of a few seconds are dominated by that second: use a million readings.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bench_topics import committed_offsets, declare_catalogue, skip_suite_records, topic_ends
from machine import describe
from process_stats import cpu_seconds, peak_rss_mb
from results_file import print_figures, save_results

from bridge.mqtt_sessions import forget_session
from bridge.status import read_statuses
from config.settings import Settings
from schemas.catalogue import raw_topic
from schemas.device_topics import device_topic
from schemas.mqtt_principals import BRIDGE, GATEWAY
from sensors.qos1_socket_publisher import publish_qos1
from stack import control
from zerocarbon.component_configs import mqtt_ca_file, mqtt_login, stack_config
from zerocarbon.processes import start_service, stop_child


def _readings(run: str, worker: int, count: int) -> list[tuple[str, bytes]]:
    now = datetime.now(UTC)
    start = (now - timedelta(minutes=15)).isoformat()
    topic = device_topic("17300", "energy", "elec-17300-0001")
    return [
        (
            topic,
            (
                f'{{"event_id":"{run}-{worker}-{k}","producer_id":"bench","event_time":"{now.isoformat()}",'
                f'"meter_id":"elec-17300-0001","commune":"17300","sector":"residential",'
                f'"carrier":"electricity","quantity":{k % 500},"unit":"Wh","kind":"interval",'
                f'"interval_start":"{start}"}}'
            ).encode(),
        )
        for k in range(count)
    ]


MessageFactory = Callable[[str, int, int], list[tuple[str, bytes]]]
"""(run id, publisher number, count) -> that publisher's (topic, payload) energy readings."""
Publish = Callable[..., int]
"""(host, port, client id, messages, login=...) -> how many the broker accepted."""


def _publisher(
    settings: Settings,
    run: str,
    worker: int,
    count: int,
    make: MessageFactory = _readings,
    publish: Publish = publish_qos1,
) -> multiprocessing.Process:
    messages = make(run, worker, count)
    args = (settings.mqtt_host, settings.mqtt_port, f"bench-load-{run}-{worker}", messages)
    # As a gateway publishing for many meters: the principal allowed on every device topic.
    options = {"login": mqtt_login(settings, GATEWAY), "ca_file": mqtt_ca_file(settings)}
    proc = multiprocessing.Process(target=publish, args=args, kwargs=options)
    proc.start()
    return proc


@dataclass(frozen=True)
class _Sample:
    """One status the bridge wrote: when (its own clock) and its counters then."""

    written_at: float
    forwarded: int
    records: int


def _forwarded(settings: Settings, client_id: str) -> _Sample:
    mine = [s for s in read_statuses(settings.stack_home / "bridge") if s.get("client_id") == client_id]
    if not mine:
        return _Sample(0.0, 0, 0)
    status = mine[0]
    return _Sample(
        float(status["updated_at"]), int(status["forwarded"].get("energy", 0)), int(status["kafka_records"])
    )


def _broker_cpu(settings: Settings) -> dict[str, float]:
    """CPU seconds used so far by the stack's brokers (what the bridge makes them do counts too)."""
    used = {}
    for service in control.services(stack_config(settings)):
        pid = service.process.pid()
        if service.name in ("mosquitto", "kafka") and pid is not None:
            used[service.name] = cpu_seconds(pid)
    return used


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def steady_rate(samples: list[_Sample], total: int) -> float | None:
    """Readings/s between the first and last statuses written while forwarding was under way
    (both stamped by the bridge); None with fewer than two such statuses."""
    moving = [s for s in samples if 0 < s.forwarded < total]
    if len(moving) < 2 or moving[-1].written_at <= moving[0].written_at:
        return None
    return (moving[-1].forwarded - moving[0].forwarded) / (moving[-1].written_at - moving[0].written_at)


def run(
    readings: int,
    publishers: int,
    mode: str,
    make: MessageFactory = _readings,
    publish: Publish = publish_qos1,
) -> dict[str, object]:
    """``live``: publish while the bridge runs; ``backlog``: publish first, then time the
    bridge draining what Mosquitto queued for its session (the bridge alone). ``make`` builds
    each publisher's energy readings, ``publish`` sends them (from a process of its own)."""
    settings = Settings()
    control.up(stack_config(settings))
    asyncio.run(declare_catalogue(settings))  # the bridge checks its raw topics are there
    run_id = uuid.uuid4().hex[:8]
    client_id = "bench-bridge"
    folder = settings.stack_home / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    per = readings // publishers
    log = folder / "bridge-bench.log"
    bridge_login = mqtt_login(settings, BRIDGE)
    forget_session(
        settings.mqtt_host, settings.mqtt_port, client_id, bridge_login, ca_file=mqtt_ca_file(settings)
    )
    # The readings land on the service's raw topic: the worker's group is moved past them after
    # (where it had read everything before), or its next start would process them all.
    worker_committed = asyncio.run(committed_offsets(settings, settings.worker_id))
    raw_ends = asyncio.run(topic_ends(settings, [raw_topic("energy")]))

    def start_bridge() -> subprocess.Popen[bytes]:
        return start_service(["bridge", "--client-id", client_id], log)

    bridge = start_bridge()
    try:
        if mode == "backlog":
            # The restarted bridge drains while it starts: its CPU is counted from its start,
            # less what this first start cost with nothing queued.
            cpu0 = cpu_seconds(bridge.pid)
            stop_child(bridge)  # the session stays: Mosquitto queues for it
            pubs = [_publisher(settings, run_id, w, per, make, publish) for w in range(publishers)]
            for p in pubs:
                p.join()
            t0 = time.time()
            bridge = start_bridge()
        else:
            brokers0, load0 = _broker_cpu(settings), _children_cpu()
            t0 = time.time()
            pubs = [_publisher(settings, run_id, w, per, make, publish) for w in range(publishers)]
            cpu0 = cpu_seconds(bridge.pid)
        samples = [_Sample(t0, 0, 0)]
        while samples[-1].forwarded < per * publishers and time.time() - t0 < 600:
            time.sleep(0.1)
            sample = _forwarded(settings, client_id)
            if sample.written_at > samples[-1].written_at:
                samples.append(sample)
        forwarded, records = samples[-1].forwarded, samples[-1].records
        # The status that showed the last reading forwarded: the run ended at or before it.
        elapsed = samples[-1].written_at - t0
        for p in pubs:
            p.join()
        cpu = cpu_seconds(bridge.pid) - cpu0
        # Live only: the load and the brokers run beside the bridge on the same cores.
        if mode == "live":
            others = {name: used - brokers0.get(name, used) for name, used in _broker_cpu(settings).items()}
            others["load"] = _children_cpu() - load0
        rss = peak_rss_mb(bridge.pid)
    finally:
        stop_child(bridge)
        # A throw-away bridge: its persistent session would queue every later message.
        forget_session(
            settings.mqtt_host, settings.mqtt_port, client_id, bridge_login, ca_file=mqtt_ca_file(settings)
        )
        asyncio.run(skip_suite_records(settings, settings.worker_id, worker_committed, raw_ends))
    total = per * publishers
    steady = steady_rate(samples, total)
    beside = (
        {}
        if mode != "live"
        else {
            f"{name}_cpu_seconds_per_million": round(used / total * 1e6, 1) for name, used in others.items()
        }
    )
    return {
        "benchmark": f"bridge_{mode}",
        "when": datetime.now(UTC).isoformat(),
        "machine": describe(),
        "readings": total,
        "publishers": f"{publishers} x sensors/qos1_socket_publisher.py (QoS 1, MQTT 5, raw socket)",
        "bridge_mqtt_version": Settings().bridge_mqtt_version,
        "forwarded": forwarded,
        "kafka_records": records,
        "seconds": round(elapsed, 2),
        "readings_per_second": round(forwarded / elapsed),
        "steady_readings_per_second": None if steady is None else round(steady),
        "bridge_cpu_seconds_per_million": round(cpu / total * 1e6, 1),
        **beside,
        "bridge_peak_rss_mb": round(rss, 1),
        "note": "from the bridge's status file, written every second: the run's end is known "
        "within a second (the whole-run rate understates by up to that); the steady rate is "
        "the slope between its statuses while forwarding",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=1_000_000, help="live mode (default 1 000 000)")
    parser.add_argument(
        "--backlog-readings",
        type=int,
        default=500_000,
        help="backlog mode (default 500 000): Mosquitto queues at most 256 MB for a session "
        "(max_queued_bytes), about 800 000 of these readings, and drops the rest",
    )
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--mode", choices=["live", "backlog", "both"], default="both")
    args = parser.parse_args()
    modes = ["live", "backlog"] if args.mode == "both" else [args.mode]
    counts = {"live": args.readings, "backlog": args.backlog_readings}
    results = [run(counts[mode], args.publishers, mode) for mode in modes]
    for result in results:
        print_figures(result, 32)
        print()
    save_results("bridge", results)
    return 0 if all(r["forwarded"] == r["readings"] for r in results) else 1


if __name__ == "__main__":
    from stack import isolated_stack

    isolated_stack.enter()  # the benchmarks' own stack instance, never one a person runs
    # Stopped by a signal, still stop the bridge it started: one left running would take over
    # the next run's client id and write into its status file.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
