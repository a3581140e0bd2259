"""The integration tier runs against the real local stack, started once per test run."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas import kafka_principals
from schemas.catalogue import INDICATOR_TOPIC
from schemas.mqtt_principals import ADMIN, BRIDGE, GATEWAY, READER, SINK, MqttLogin
from stack import control, isolated_stack
from stack.stack_config import StackConfig
from streams.kafka_admin import catalogue, ensure_topics, start_group_at_end
from tests.integration.golden_meters import RESIDENTIAL, forget_indicator_state
from zerocarbon import component_configs
from zerocarbon.processes import start_service, stop_child


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent.name == "integration":
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def local_stack(settings: Settings, stack_config: StackConfig) -> Iterator[Settings]:
    """Bring the isolated instance of Kafka, Mosquitto and InfluxDB up (idempotent); stop it
    after the run if the run started it."""
    isolated_stack.hold_instance()  # another run on this machine finishes first
    services = control.services(stack_config)
    running_before = {service.name for service in services if service.process.is_running()}
    if not running_before:
        # Each run starts from an empty cluster, as a new machine does: state left by an
        # earlier run (a topic auto-created with the wrong partitions) cannot hide a defect.
        assert stack_config.home.name == isolated_stack.isolated_home({}).name, stack_config.home
        shutil.rmtree(stack_config.home, ignore_errors=True)
    report = control.up(stack_config)
    assert all(service["healthy"] for service in report), report
    # The service's topics, declared by the admin as `zerocarbon stack up` declares them: no
    # service may create one, and the broker creates none by itself.
    asyncio.run(
        ensure_topics(
            admin_access(settings), catalogue(settings.kafka_partitions), settings.kafka_replication
        )
    )
    yield settings
    for service in reversed(services):
        if service.name not in running_before:
            service.stop()


def admin_access(settings: Settings) -> KafkaAccess:
    """The Kafka admin's access (a super user), as `zerocarbon stack up` generated its login."""
    return component_configs.kafka_access(settings, kafka_principals.ADMIN)


@pytest.fixture(scope="session")
def kafka_admin(local_stack: Settings) -> KafkaAccess:
    """What the harness does on Kafka (writes a test's input, reads outputs back, creates and
    deletes test topics, moves consumer groups) it does as the admin; the service's own
    components get their principal's access, so that the tests run under the real ACLs."""
    return admin_access(local_stack)


# The MQTT principals' logins (docs/security.md), as `zerocarbon stack up` generated them: a
# test connects as the role it plays, never anonymously (the broker refuses that).
@pytest.fixture(scope="session")
def gateway_login(local_stack: Settings) -> MqttLogin:
    """Publishes on any device topic zc/+/+/+, and on the local stack under zc-sandbox/#."""
    return component_configs.mqtt_login(local_stack, GATEWAY)


@pytest.fixture(scope="session")
def bridge_login(local_stack: Settings) -> MqttLogin:
    """Subscribes to zc/+/+/+ (and its shared form) and receives; publishes nothing."""
    return component_configs.mqtt_login(local_stack, BRIDGE)


@pytest.fixture(scope="session")
def sink_login(local_stack: Settings) -> MqttLogin:
    """Publishes the retained indicators under zc-indicators/."""
    return component_configs.mqtt_login(local_stack, SINK)


@pytest.fixture(scope="session")
def reader_login(local_stack: Settings) -> MqttLogin:
    """Subscribes to the retained indicators and receives them."""
    return component_configs.mqtt_login(local_stack, READER)


@pytest.fixture(scope="session")
def admin_login(local_stack: Settings) -> MqttLogin:
    """The broker's dynamic-security admin."""
    return component_configs.mqtt_login(local_stack, ADMIN)


def running(command: str, log: Path) -> Iterator[Path]:
    """`zerocarbon <command>` started as an operator would, until the module is done; its log."""
    proc = start_service([command], log)
    try:
        yield log
    finally:
        stop_child(proc)


def forget_bridge_session(client_id: str) -> None:
    """Drop the MQTT session a test's bridge left in Mosquitto (``bridge --forget-session``): what
    it queues for the client id is no later test's."""
    subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", "bridge", "--forget-session", "--client-id", client_id],
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A `zerocarbon worker` for the module's tests."""
    yield from running("worker", tmp_path_factory.mktemp("worker") / "worker.log")


@pytest.fixture(scope="module")
def sink(
    settings: Settings, kafka_admin: KafkaAccess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A `zerocarbon sink` (indicator updates to InfluxDB) for the module's tests, its group
    moved to the end of zc.indicators first: what earlier modules published (a fault scenario
    publishes hundreds of thousands of updates) is not the module's to wait for. The golden
    figures' read-back timed out behind that backlog in CI."""
    asyncio.run(start_group_at_end(kafka_admin, settings.sink_group, [INDICATOR_TOPIC]))
    yield from running("sink", tmp_path_factory.mktemp("sink") / "sink.log")


@pytest.fixture(scope="module")
def fresh_partition(settings: Settings, kafka_admin: KafkaAccess) -> None:
    """Start afresh, at its current end, the indicator state of the partition of Aytré, the
    commune of the golden meter golden-17028-0008, so that a module's event times are judged
    against its own watermark. Ask for it before ``worker``."""
    asyncio.run(forget_indicator_state(kafka_admin, settings, [RESIDENTIAL.partition(settings)]))
