"""The smoke path through every real part: paho -> Mosquitto -> bridge -> Kafka -> faust -> InfluxDB.

The bridge and the worker run as the operator would run them (`zerocarbon bridge`,
`zerocarbon worker`); the test only publishes over MQTT and reads back with Flux.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.mqtt_sessions import forget_session
from config.settings import Settings
from sensors.mqtt_publish import publish_readings
from tests.integration.kafka_reading import dead_letters_holding
from zerocarbon.demo import BRIDGE_READY, WORKER_READY, demo_readings, wait_for_readings
from zerocarbon.processes import spawn_command, stop_child, wait_for_log


@pytest.fixture(scope="module")
def running_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    logs = tmp_path_factory.mktemp("service-logs")
    client_id = f"test-smoke-bridge-{uuid.uuid4().hex[:8]}"
    bridge = spawn_command(["bridge", "--client-id", client_id], logs / "bridge.log")
    worker = spawn_command(["worker"], logs / "worker.log")
    try:
        wait_for_log(bridge, logs / "bridge.log", BRIDGE_READY, timeout=60)
        wait_for_log(worker, logs / "worker.log", WORKER_READY, timeout=120)
        yield logs
    finally:
        assert stop_child(bridge) == 0, (logs / "bridge.log").read_text()[-3000:]
        stop_child(worker)
        settings = Settings()
        forget_session(settings.mqtt_host, settings.mqtt_port, client_id)


def test_readings_published_over_mqtt_are_read_back_with_flux(
    settings: Settings, running_service: Path
) -> None:
    run_id = uuid.uuid4().hex[:8]
    sent = demo_readings(run_id, 30)
    assert publish_readings(settings.mqtt_host, settings.mqtt_port, settings.smoke_mqtt_topic, sent) == 30
    stored = wait_for_readings(settings, f"demo-{run_id}-", expected=30, timeout=60)
    assert sorted((r.device_id, r.time, r.value) for r in stored) == sorted(
        (r.device_id, r.time, r.value) for r in sent
    )


async def test_invalid_reading_is_dead_lettered_with_its_offset_and_the_rest_still_arrive(
    settings: Settings, running_service: Path
) -> None:
    """Issue 19: an invalid smoke reading was only logged; it goes to zc.deadletter verbatim,
    with where it was read and why."""
    import paho.mqtt.publish as single

    from sensors.mqtt_publish import device_topic

    run_id = uuid.uuid4().hex[:8]
    bad_device = f"demo-{run_id}-broken"
    payload = f'{{"device_id": "{bad_device}", "value": "NaN-ish", "time": "yesterday"}}'.encode()
    single.single(
        device_topic(settings.smoke_mqtt_topic, bad_device),
        payload=payload, qos=1, hostname=settings.mqtt_host, port=settings.mqtt_port,
    )  # fmt: skip
    sent = demo_readings(run_id, 3)
    publish_readings(settings.mqtt_host, settings.mqtt_port, settings.smoke_mqtt_topic, sent)
    stored = wait_for_readings(settings, f"demo-{run_id}-", expected=3, timeout=60)
    assert len(stored) == 3
    log = (running_service / "worker.log").read_text()
    assert "invalid smoke reading at zc.smoke.readings[" in log

    (letter,) = await dead_letters_holding(settings, bad_device.encode(), timeout=30)
    assert letter["family"] == "smoke" and letter["stage"] == "smoke"
    assert letter["payload"].encode() == payload
    assert {problem["path"] for problem in letter["errors"]} == {"value", "time"}
    assert letter["reason"].startswith(("value:", "time:")), letter["reason"]
    origin = letter["origin"]
    assert origin["transport"] == "kafka" and origin["topic"] == settings.smoke_kafka_topic
    assert origin["offset"] is not None and origin["partition"] is not None and origin["key"] == bad_device
