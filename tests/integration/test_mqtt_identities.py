"""Who may do what on the real Mosquitto (docs/security.md, "Devices and MQTT"): no anonymous
client, a device on its own topic only, a revoked device cut off within seconds, readers and
the bridge unable to publish. Devices are provisioned as an operator does, with
`zerocarbon devices add`, into a reference folder of the test's own."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.mqtt_sessions import forget_session
from config.kafka_access import KafkaAccess
from config.settings import Settings
from reference.loader import DEFAULT_DIR
from schemas.catalogue import raw_topic
from schemas.device_topics import device_topic
from schemas.mqtt_principals import DEVICE_ROLE_PREFIX, SANDBOX_ROOT, MqttLogin
from stack.dynamic_security import DynamicSecurity
from tests.integration.broker_clients import NOT_AUTHORIZED, Client
from tests.integration.kafka_reading import read_payloads
from zerocarbon.component_configs import mqtt_ca_file
from zerocarbon.processes import start_service, stop_child

COMMUNE, FAMILY = "17300", "energy"


@dataclass(frozen=True)
class Device:
    device_id: str
    login: MqttLogin

    @property
    def topic(self) -> str:
        return device_topic(COMMUNE, FAMILY, self.device_id)


def _zerocarbon(reference: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`zerocarbon ARGS...` as an operator runs it, with the module's reference folder."""
    env = {**os.environ, "ZC_REFERENCE_DIR": str(reference)}
    return subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", *args], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reference folder of the module's own, where `zerocarbon devices add` may write."""
    folder = tmp_path_factory.mktemp("reference")
    shutil.copytree(DEFAULT_DIR, folder, dirs_exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def devices(reference: Path, admin_login: MqttLogin, settings: Settings) -> Iterator[dict[str, Device]]:
    """Two meters of La Rochelle added with `zerocarbon devices add`, their passwords as it
    printed them; their broker clients and roles deleted afterwards."""
    run = uuid.uuid4().hex[:8]
    made: dict[str, Device] = {}
    try:
        for name in ("a", "b", "revoked"):
            device_id = f"test-meter-{name}-{run}"
            done = _zerocarbon(
                reference, "devices", "add", device_id, "--commune", COMMUNE, "--family", FAMILY,
                "--type", "electricity_meter", "--sector", "residential", "--producer", f"test-{run}",
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            password = re.search(r"^MQTT password:\s+(\S+)$", done.stdout, re.M)
            assert password is not None, done.stdout
            made[name] = Device(device_id, MqttLogin(device_id, password.group(1)))
        yield made
    finally:
        with DynamicSecurity(
            settings.mqtt_host, settings.mqtt_port, admin_login, ca_file=mqtt_ca_file(settings)
        ) as dynsec:
            for device in made.values():
                dynsec.delete_client(device.device_id)
                dynsec.delete_role(f"{DEVICE_ROLE_PREFIX}{device.device_id}")


@pytest.fixture(scope="module")
def bridge(
    settings: Settings, bridge_login: MqttLogin, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A running `zerocarbon bridge` with a client id of its own; its session forgotten after."""
    client_id = f"test-identities-{uuid.uuid4().hex[:8]}"
    proc = start_service(
        ["bridge", "--client-id", client_id], tmp_path_factory.mktemp("bridge") / "bridge.log"
    )
    try:
        yield client_id
    finally:
        stop_child(proc)
        forget_session(
            settings.mqtt_host, settings.mqtt_port, client_id, bridge_login, ca_file=mqtt_ca_file(settings)
        )


def _reading(event_id: str, device_id: str) -> bytes:
    return json.dumps(
        {
            "event_id": event_id, "producer_id": "test-identities", "event_time": "2026-01-01T00:15:00Z",
            "meter_id": device_id, "commune": COMMUNE, "sector": "residential", "carrier": "electricity",
            "quantity": 1, "unit": "Wh", "kind": "interval", "interval_start": "2026-01-01T00:00:00Z",
        }
    ).encode()  # fmt: skip


def test_an_anonymous_client_is_refused(settings: Settings) -> None:
    client = Client(settings, None)
    try:
        assert not client.accepted
        assert client.connack is not None and client.connack.value == NOT_AUTHORIZED
    finally:
        client.close()


def test_a_wrong_password_is_refused(settings: Settings, gateway_login: MqttLogin) -> None:
    client = Client(settings, MqttLogin(gateway_login.username, gateway_login.password + "x"))
    try:
        assert not client.accepted
    finally:
        client.close()


async def test_a_device_publishes_on_its_own_topic_only_and_nothing_else_reaches_kafka(
    settings: Settings, kafka_admin: KafkaAccess, devices: dict[str, Device], bridge: str
) -> None:
    a, b = devices["a"], devices["b"]
    run = uuid.uuid4().hex[:8]
    client = Client(settings, a.login)
    try:
        assert client.accepted
        # Mosquitto 2.0 answers a refused QoS 1 publish with PUBACK 0x87 and drops the message.
        assert client.publish(b.topic, _reading(f"forged-{run}", b.device_id)).value == NOT_AUTHORIZED
        assert client.publish(f"zc/17028/{FAMILY}/{a.device_id}", b"{}").value == NOT_AUTHORIZED
        assert client.publish(f"{SANDBOX_ROOT}/{a.device_id}", b"{}").value == NOT_AUTHORIZED
        assert client.subscribe(b.topic).value == NOT_AUTHORIZED
        assert client.subscribe("zc/#").value == NOT_AUTHORIZED
        own = client.publish(a.topic, _reading(f"own-{run}", a.device_id))
        assert not own.is_failure, own
    finally:
        client.close()
    # The device's own reading arrives after the forged one would have (same commune: same
    # partition, in order); only the own one is there.
    found = await read_payloads(
        kafka_admin,
        [raw_topic(FAMILY)],
        keep=lambda _t, p: run.encode() in p,
        done=lambda got: any(f"own-{run}".encode() in p for _, p in got),
        timeout=60,
    )
    assert [t for t, _ in found] == [a.topic], found


def test_a_revoked_device_is_cut_off_within_seconds_and_cannot_reconnect(
    settings: Settings, devices: dict[str, Device], reference: Path
) -> None:
    device = devices["revoked"]
    client = Client(settings, device.login)
    try:
        assert client.accepted
        assert not client.publish(device.topic, b"{}").is_failure  # it was allowed until now
        started = time.monotonic()
        done = _zerocarbon(reference, "devices", "revoke", device.device_id)
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 5
        while client.disconnected_at is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.disconnected_at is not None, "the live session was not cut within 5 s"
        cut = client.disconnected_at - started
        print(f"cut {cut:.2f} s after `devices revoke` started ({client.disconnect_reason})")
    finally:
        client.close()
    again = Client(settings, device.login)
    try:
        assert not again.accepted
        assert again.connack is not None and again.connack.value == NOT_AUTHORIZED
    finally:
        again.close()
    listed = _zerocarbon(reference, "devices", "list", "--json")
    states = {row["device_id"]: row["broker"] for row in json.loads(listed.stdout)}
    assert states[device.device_id] == "revoked"
    assert states[devices["a"].device_id] == "active"
    assert states["elec-17300-0001"] == "missing"  # in the registry, no credential


def test_a_reader_receives_the_retained_indicators_and_cannot_publish(
    settings: Settings, reader_login: MqttLogin
) -> None:
    reader = Client(settings, reader_login)
    try:
        assert reader.accepted
        assert not reader.subscribe(f"{settings.sink_mqtt_topic_root}/#").is_failure
        root = settings.sink_mqtt_topic_root
        assert reader.publish(f"{root}/forged/1h/commune=17300", b"{}", retain=True).value == NOT_AUTHORIZED
        assert reader.publish(device_topic(COMMUNE, FAMILY, "elec-17300-0001"), b"{}").value == NOT_AUTHORIZED
        assert reader.subscribe("zc/+/+/+").value == NOT_AUTHORIZED
    finally:
        reader.close()


def test_the_bridge_principal_subscribes_and_cannot_publish(
    settings: Settings, bridge_login: MqttLogin
) -> None:
    client = Client(settings, bridge_login)
    try:
        assert client.accepted
        assert not client.subscribe("$share/test-identities/zc/+/+/+").is_failure
        assert client.publish(device_topic(COMMUNE, FAMILY, "elec-17300-0001"), b"{}").value == NOT_AUTHORIZED
        assert client.publish(f"{settings.sink_mqtt_topic_root}/x", b"{}").value == NOT_AUTHORIZED
        assert client.subscribe(f"{settings.sink_mqtt_topic_root}/#").value == NOT_AUTHORIZED
    finally:
        client.close()


def test_the_gateway_publishes_on_any_device_topic_and_nowhere_else(
    settings: Settings, gateway_login: MqttLogin
) -> None:
    client = Client(settings, gateway_login)
    try:
        # Its device topics: every test that publishes readings does so as the gateway. On
        # the local stack it may also use the sandbox, which no bridge reads.
        assert not client.publish(f"{SANDBOX_ROOT}/test/{uuid.uuid4().hex[:8]}", b"{}").is_failure
        assert client.publish(f"{settings.sink_mqtt_topic_root}/forged", b"{}").value == NOT_AUTHORIZED
        assert client.publish("zc/17300/energy", b"{}").value == NOT_AUTHORIZED  # not a device topic
        assert client.subscribe("zc/+/+/+").value == NOT_AUTHORIZED
    finally:
        client.close()
