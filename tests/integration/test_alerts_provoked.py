"""Alerts of stack/alert_rules.py provoked on the real stack, as their faults happen (issue 23).

Each rule is proven on synthetic series by promtool (tests/unit/test_alert_rules.py); here the
real Prometheus scrapes the real processes. It runs on a TSDB of each test's own (series of
processes earlier modules ran would count too), reading the targets the processes register,
with the deployment's rules fired as soon as they hold (``without_holds``).
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import INDICATOR_TOPIC
from schemas.indicator import IndicatorUpdate, series_key
from stack.prometheus_server import PrometheusServer, without_holds
from stack.stack_config import StackConfig
from streams.kafka_admin import start_group_at_end
from tests.free_ports import free_port
from tests.integration.conftest import forget_bridge_session
from tests.waiting import until
from zerocarbon.processes import start_service, stop_child

RESTART_LOOP = "ZcProcessRestartLoop"
LAG_GROWING = "ZcConsumerLagGrowing"


@pytest.fixture
def prometheus(stack_config: StackConfig, tmp_path: Path) -> Iterator[PrometheusServer]:
    """The stack's Prometheus (rules without holds, a scrape a second) on a TSDB of its own,
    reading the targets the processes register."""
    home = tmp_path / "home"
    (home / "prometheus").mkdir(parents=True)
    stack_config.metrics_targets_dir.mkdir(parents=True, exist_ok=True)  # no process registered yet
    (home / "prometheus" / "targets").symlink_to(stack_config.metrics_targets_dir, target_is_directory=True)
    server = PrometheusServer(replace(without_holds(stack_config), home=home, prometheus_scrape_seconds=1))
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _firing_for(server: PrometheusServer, process: str, alert: str = RESTART_LOOP) -> bool:
    return bool(server.query(f'ALERTS{{alertname="{alert}", alertstate="firing", process="{process}"}}'))


def _scraped(server: PrometheusServer, pid: int) -> bool:
    return bool(server.query(f'process_start_time_seconds{{process="bridge", pid="{pid}"}}'))


async def test_a_bridge_killed_three_times_fires_the_restart_loop_alert(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    """ZcProcessRestartLoop counts the series of ``process_start_time_seconds`` gone within 15
    minutes, one per run (each registers its pid as a label: config/metrics_targets.py): a
    bridge killed three times, as a crash loop under a supervisor ends it, fires it, not before."""
    client_id = f"zc-restart-loop-{uuid.uuid4().hex[:8]}"
    runs: list[subprocess.Popen[bytes]] = []
    try:
        for run in range(4):
            proc = start_service(["bridge", "--client-id", client_id], tmp_path / f"bridge-{run}.log")
            runs.append(proc)
            pid = proc.pid
            await until(f"bridge run {run} (pid {pid}) scraped", lambda: _scraped(prometheus, pid))  # noqa: B023
            if run < 3:
                # Two runs ended are a bad moment, not a loop: the rule waits for the third.
                assert not _firing_for(prometheus, "bridge"), f"{RESTART_LOOP} fired after {run} runs ended"
                proc.kill()  # no goodbye, as a crash ends it
                proc.wait(timeout=30)
        await until(f"{RESTART_LOOP} firing for the bridge", lambda: _firing_for(prometheus, "bridge"), 90)
        assert runs[-1].poll() is None  # the loop is about the runs that ended, the last one lives
    finally:
        for proc in runs:
            if proc.poll() is None:
                stop_child(proc)
        forget_bridge_session(client_id)


def _value(server: PrometheusServer, expr: str) -> float:
    result = server.query(expr)
    return float(result[0]["value"][1]) if result else 0.0  # type: ignore[index]


def _hour_update(first: datetime, n: int, commune: str) -> IndicatorUpdate:
    """A final update of the ``n``-th hour after ``first`` of a commune's energy (value ``n``)."""
    at = first + timedelta(hours=n)
    return IndicatorUpdate(
        indicator="energy_consumed_kwh", unit="kWh", window="1h", window_start=at,
        window_end=at + timedelta(hours=1), dimensions={"commune": commune}, value=float(n),
        final=True, revision=0, updated_at=datetime.now(UTC),
    )  # fmt: skip


async def _publish_updates(kafka: KafkaAccess, stop: asyncio.Event) -> None:
    """Indicator updates of distinct hours (nothing coalesces), a hundred a second, until ``stop``."""
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all")
    await producer.start()
    start, n = datetime(2026, 1, 1, tzinfo=UTC), 0
    try:
        while not stop.is_set():
            for _ in range(20):
                update = _hour_update(start, n, "17300")
                await producer.send(
                    INDICATOR_TOPIC, update.model_dump_json(by_alias=True).encode(), key=series_key(update)
                )
                n += 1
            await asyncio.sleep(0.2)
        await producer.flush()
    finally:
        await producer.stop()


async def _publish_to_every_partition(kafka: KafkaAccess, per_partition: int) -> list[int]:
    """``per_partition`` updates of a series of their own into each partition of zc.indicators;
    the partitions."""
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all")
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(INDICATOR_TOPIC))
        at = datetime(2025, 1, 1, tzinfo=UTC)
        for partition in partitions:
            for n in range(per_partition):
                update = _hour_update(at, n, "17028")
                value = update.model_dump_json(by_alias=True).encode()
                await producer.send(INDICATOR_TOPIC, value, key=series_key(update), partition=partition)
        await producer.flush()
    finally:
        await producer.stop()
    return partitions


async def test_a_sink_that_stops_reading_fires_the_lag_growing_alert(
    prometheus: PrometheusServer, kafka_admin: KafkaAccess, settings: Settings, tmp_path: Path
) -> None:
    """ZcConsumerLagGrowing: InfluxDB away (a port nothing listens on) and a disk buffer of 64
    KiB, the sink stops reading Kafka while updates go on arriving; its lag must grow in
    /metrics, which it did not (it was the fetches' high watermark, and a paused sink fetches
    nothing)."""
    await start_group_at_end(kafka_admin, settings.sink_group, [INDICATOR_TOPIC])
    env = {
        "ZC_INFLUX_PORT": str(free_port()),
        "ZC_SINK_MEMORY_LIMIT_BYTES": str(64 * 1024),
        "ZC_SINK_SPOOL_MAX_BYTES": str(64 * 1024),
        "ZC_SINK_SPOOL_DIR": str(tmp_path / "spool"),
        "ZC_SINK_MQTT_RETAINED": "false",
    }
    sink = start_service(["sink"], tmp_path / "sink.log", env)
    stop = asyncio.Event()
    updates = asyncio.create_task(_publish_updates(kafka_admin, stop))
    try:
        pid = sink.pid
        await until(
            "the sink scraped, its reading paused",
            lambda: bool(prometheus.query(f'zc_sink_reading_paused{{pid="{pid}"}} == 1')),
            120,
        )
        lag = f'sum(zc_sink_kafka_lag_records{{pid="{pid}"}})'
        paused_at = _value(prometheus, lag)
        await asyncio.sleep(10)  # a thousand updates more
        assert _value(prometheus, lag) >= paused_at + 500, "the paused sink's lag stopped growing"
        # Every other partition: the sink, paused, never fetched a record of theirs, and their lag
        # was missing from /metrics.
        partitions = await _publish_to_every_partition(kafka_admin, 100)
        for partition in partitions:
            await until(
                f"the lag of partition {partition} in /metrics",
                lambda p=partition: (
                    _value(prometheus, f'zc_sink_kafka_lag_records{{pid="{pid}",partition="{p}"}}') >= 100
                ),
                60,
            )
        await until(
            f"{LAG_GROWING} firing for the sink", lambda: _firing_for(prometheus, "sink", LAG_GROWING), 60
        )
    finally:
        stop.set()
        await updates
        stop_child(sink)
