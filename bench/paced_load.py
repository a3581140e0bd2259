"""The end-to-end load: the workload's readings published live over MQTT at an offered rate,
with latency markers, from a process of its own.

Readings carry the instant they are built as their event time (their 10-minute interval
ends then). Every ``marker_every`` seconds a marker reading (1 kWh in the marker series) is
published on its own and the wall-clock instant its bytes were handed to the socket is
kept: the start of its publish-to-visible latency. QoS 1 through
``expiring_publisher.py``, every message acknowledged by Mosquitto.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from energy_workload import INTERVAL_SECONDS, EnergyWorkload, iso
from expiring_publisher import EXPIRY_SECONDS

from schemas.mqtt_principals import MqttLogin
from sensors.pacing import paced
from sensors.qos1_socket_publisher import Qos1SocketPublisher


@dataclass(frozen=True)
class LoadPlan:
    """``count`` readings from index ``first``; ``rate`` None: as fast as acknowledgements allow."""

    run: str
    first: int
    count: int
    rate: float | None
    first_marker: int
    marker_every: float = 0.05


@dataclass
class LoadReport:
    sent: int = 0
    acknowledged: int = 0
    first_publish: float = 0.0
    last_publish: float = 0.0
    cpu_seconds: float = 0.0
    marker_times: list[float] = field(default_factory=list)


def publish_load(
    host: str,
    port: int,
    communes: Sequence[str],
    partitions: int,
    plan: LoadPlan,
    login: MqttLogin,
    ca_file: Path | None = None,
) -> LoadReport:
    """Publish the plan's readings and markers as ``login``; wall-clock instants are ``time.time()``."""
    workload = EnergyWorkload(communes, partitions)
    publisher = Qos1SocketPublisher(
        host,
        port,
        f"zc-bench-load-{plan.run}-{plan.first}",
        window=1000,
        username=login.username,
        password=login.password,
        message_expiry_seconds=EXPIRY_SECONDS,
        ca_file=ca_file,
    )
    report = LoadReport()
    marker = plan.first_marker
    next_marker = 0.0
    try:
        report.first_publish = time.time()
        next_marker = report.first_publish
        for batch in paced(range(plan.first, plan.first + plan.count), float, rate=plan.rate, batch_max=500):
            now = time.time()
            at, start = iso(now), iso(now - INTERVAL_SECONDS)
            publisher.publish_many([workload.message(plan.run, k, at, start) for k in batch])
            if now >= next_marker:
                publisher.publish_many([workload.marker(plan.run, marker, at, start)])
                report.marker_times.append(time.time())
                marker += 1
                next_marker += plan.marker_every
        report.last_publish = time.time()
        report.sent = publisher.sent
        report.acknowledged = publisher.wait_acknowledged()
        report.cpu_seconds = time.process_time()
    finally:
        publisher.close()
    return report


def _child(
    host: str,
    port: int,
    communes: Sequence[str],
    partitions: int,
    plan: LoadPlan,
    login: MqttLogin,
    answer: multiprocessing.Queue[LoadReport],
    ca_file: Path | None,
) -> None:
    answer.put(publish_load(host, port, communes, partitions, plan, login, ca_file))


class LoadProcess:
    """``publish_load`` in a process of its own (the parent polls InfluxDB meanwhile)."""

    def __init__(
        self,
        host: str,
        port: int,
        communes: Sequence[str],
        partitions: int,
        plan: LoadPlan,
        login: MqttLogin,
        ca_file: Path | None = None,
    ) -> None:
        self._answer: multiprocessing.Queue[LoadReport] = multiprocessing.Queue()
        self.process = multiprocessing.Process(
            target=_child, args=(host, port, list(communes), partitions, plan, login, self._answer, ca_file)
        )
        self.process.start()

    def report(self, timeout: float) -> LoadReport:
        found: LoadReport = self._answer.get(timeout=timeout)
        self.process.join(10)
        return found
