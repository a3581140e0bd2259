"""The real Prometheus (Debian's package, run by the stack: stack/prometheus_server.py) finds
the worker and the sink by the files they register (config/metrics_targets.py), sees their
metrics move, and fires an alert of stack/alert_rules.py on a provoked fault (issue 23).

Its alerts here fire as soon as their condition holds (``without_holds``): the rules are the
deployment's otherwise, expressions and all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import raw_topic
from stack.prometheus_server import PrometheusServer, without_holds
from stack.stack_config import StackConfig
from tests.collector_devices import reference_with_test_devices
from tests.energy_readings import energy_reading
from tests.grafana_panels import DASHBOARDS, prometheus_panels
from tests.integration.conftest import forget_bridge_session, running
from tests.integration.source_server import RECORDED, RECORDED_DAY, RunningServer, SourceServer
from tests.waiting import until
from zerocarbon.component_configs import worker_url
from zerocarbon.processes import stop_child


@pytest.fixture(scope="module")
def prometheus(stack_config: StackConfig) -> Iterator[PrometheusServer]:
    server = PrometheusServer(replace(without_holds(stack_config), prometheus_scrape_seconds=1))
    server.start()
    server.wait_ready()
    yield server
    server.stop()


async def _scraped(server: PrometheusServer, processes: set[str]) -> None:
    """Until Prometheus scrapes each of ``processes`` (found by the file it registered)."""

    def up() -> set[str]:
        return {str(r["metric"]["process"]) for r in server.query("up == 1")}  # type: ignore[index]

    await until(f"{sorted(processes)} scraped", lambda: up() >= processes, 60)


def _value(server: PrometheusServer, expr: str) -> float:
    result = server.query(expr)
    return float(result[0]["value"][1]) if result else 0.0  # type: ignore[index]


async def _send(kafka: KafkaAccess, payloads: list[bytes]) -> None:
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all")
    await producer.start()
    try:
        for payload in payloads:
            await producer.send(raw_topic("energy"), payload, key=b"17300")
        await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.usefixtures("worker", "sink")
async def test_prometheus_scrapes_every_process_that_registered_and_sees_readings_move(
    prometheus: PrometheusServer, kafka_admin: KafkaAccess, settings: Settings
) -> None:
    await _scraped(prometheus, {"worker", "sink"})
    before = _value(prometheus, "sum(zc_validation_received_readings_total)")
    run, now = uuid.uuid4().hex[:8], datetime.now(UTC)
    readings = [energy_reading("enedis", f"{run}-{n}", now) for n in range(20)]
    await _send(kafka_admin, [json.dumps([r]).encode() for r in readings])
    await until(
        "20 more readings received in Prometheus",
        lambda: _value(prometheus, "sum(zc_validation_received_readings_total)") >= before + 20,
    )


@pytest.mark.usefixtures("worker")
async def test_a_dead_letter_ratio_above_five_percent_fires_its_alert(
    prometheus: PrometheusServer, kafka_admin: KafkaAccess
) -> None:
    await _scraped(prometheus, {"worker"})
    assert "ZcDeadLetterRatioHigh" not in prometheus.firing()
    await _send(kafka_admin, [b'{"not": "a reading"}'] * 50)
    await until("ZcDeadLetterRatioHigh firing", lambda: "ZcDeadLetterRatioHigh" in prometheus.firing(), 90)


def _ready(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())
    except OSError as exc:
        return 0, {"error": str(exc)}


@pytest.mark.usefixtures("worker", "sink")
async def test_the_worker_and_the_sink_say_when_they_are_ready(settings: Settings) -> None:
    """Their /ready (docs/metrics.md): 200 once connected and caught up, as the probes read it."""
    status_file = settings.stack_home / "sink" / "influx-sink.status.json"
    await until("the sink's status file", status_file.exists, 60)
    sink_port = json.loads(status_file.read_text())["metrics_port"]
    for url in (f"{worker_url(settings)}/ready", f"http://127.0.0.1:{sink_port}/ready"):
        await until(f"{url} ready", lambda url=url: _ready(url)[0] == 200, 90)  # type: ignore[misc]
        assert _ready(url)[1]["status"] == "pass"


@pytest.fixture(scope="module")
def bridge(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A `zerocarbon bridge` for the platform dashboard's bridge panels; its MQTT session is
    forgotten afterwards, as after `zerocarbon up`'s test."""
    try:
        yield from running("bridge", tmp_path_factory.mktemp("bridge") / "bridge.log")
    finally:
        forget_bridge_session(settings.bridge_client_id)


@pytest.mark.usefixtures("worker", "sink", "bridge", "collector")
async def test_every_platform_panel_returns_data(prometheus: PrometheusServer) -> None:
    """Each PromQL panel of docker/grafana/dashboards/ (the platform's) answers with at least one
    series from the real Prometheus scraping the real processes: a panel that shows nothing
    fails. Runs after the module's readings and dead letters, so rates and reasons exist."""
    await _scraped(prometheus, {"worker", "sink", "bridge", "collector"})
    expressions = [panel for path in DASHBOARDS for panel in prometheus_panels(path)]
    assert expressions, "no Prometheus panel found"
    for panel in expressions:

        def shows(expr: str = panel.query) -> bool:
            return bool(prometheus.query(expr))

        await until(f"{panel.dashboard}: {panel.title}: {panel.query}", shows, 60)


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`zerocarbon collect` polling a recorded JSON API (tests/integration/source_server.py),
    serving its /metrics on a free port it registers for Prometheus."""
    folder = tmp_path_factory.mktemp("collector")
    reference = reference_with_test_devices(folder / "reference")
    yesterday = (date.today() - timedelta(days=1) - RECORDED_DAY).days
    with RunningServer(SourceServer(shift_days=yesterday)) as server:
        template = (RECORDED / "collectors" / "http-json-air-quality.toml").read_text(encoding="utf-8")
        source = folder / "air-quality.toml"
        source.write_text(template.replace("{PORT}", str(server.port)), encoding="utf-8")
        env = {
            **os.environ,
            "ZC_REFERENCE_DIR": str(reference),
            "ZC_COLLECTOR_STATE_DIR": str(folder / "state"),
            "ZC_COLLECTOR_METRICS_PORT": "0",
        }
        with (folder / "collect.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "zerocarbon.cli", "collect", str(source)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            yield
        finally:
            stop_child(process)
