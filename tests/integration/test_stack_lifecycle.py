"""`zerocarbon stack` reports real health, `up` is idempotent, and an older stack home is
upgraded by it."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from config.settings import Settings
from schemas.mqtt_principals import MqttLogin
from stack import control
from stack.mosquitto_broker import MosquittoBroker
from stack.stack_config import StackConfig
from tests.mqtt_tls import secure


def _status_cli() -> tuple[int, list[dict[str, object]]]:
    proc = subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", "stack", "status"], capture_output=True, text=True
    )
    return proc.returncode, json.loads(proc.stdout)


def test_status_reports_all_three_healthy_with_versions() -> None:
    code, report = _status_cli()
    assert code == 0
    by_name = {s["name"]: s for s in report}
    assert set(by_name) == {"kafka", "mosquitto", "influxdb"}
    assert all(s["healthy"] and s["running"] for s in report)
    assert str(by_name["kafka"]["version"]).startswith("4.")
    assert str(by_name["influxdb"]["version"]).startswith("v2.")
    assert str(by_name["mosquitto"]["version"]).startswith("2.")
    assert all(str(s["log_file"]).endswith(".log") for s in report)


def test_the_kafka_broker_writes_its_own_log(stack_config: StackConfig) -> None:
    """The broker's log is where `stack up` sends an operator when Kafka fails: Kafka's own
    lines must reach it (with an slf4j binding of the wrong generation, none did)."""
    kafka = next(s for s in control.services(stack_config) if s.name == "kafka")
    # This start's lines only: the file may keep earlier starts' (each begins with "=== ").
    log = kafka.dirs.log_file.read_text(errors="replace").rsplit("\n=== ", 1)[-1]
    assert "No SLF4J providers" not in log and "StaticLoggerBinder" not in log
    assert "Kafka Server started" in log, log[-2000:]


def test_up_twice_keeps_the_same_processes(stack_config: StackConfig) -> None:
    before = {s.name: s.process.pid() for s in control.services(stack_config)}
    control.up(stack_config)
    after = {s.name: s.process.pid() for s in control.services(stack_config)}
    assert before == after
    assert all(pid is not None for pid in after.values())


def test_status_exits_non_zero_when_a_service_is_down(stack_config: StackConfig) -> None:
    mosquitto = next(s for s in control.services(stack_config) if s.name == "mosquitto")
    mosquitto.stop()
    try:
        code, report = _status_cli()
        assert code == 1
        down = next(s for s in report if s["name"] == "mosquitto")
        assert down["healthy"] is False and down["detail"] == "not running"
    finally:
        control.up(stack_config)


def _connack(settings: Settings, login: MqttLogin | None) -> ReasonCode:
    """What the broker answers an MQTT 5 login (None: anonymous)."""
    answered = threading.Event()
    got: list[ReasonCode] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if login is not None:
        client.username_pw_set(login.username, login.password)
    client.on_connect = lambda _c, _u, _f, reason, _p: (got.append(reason), answered.set())
    secure(client, settings)
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.loop_start()
    try:
        assert answered.wait(10), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0]


def test_a_stack_home_from_before_mqtt_identities_gets_them_at_the_next_up(
    settings: Settings, stack_config: StackConfig, gateway_login: MqttLogin
) -> None:
    broker = MosquittoBroker(stack_config)
    broker.stop()
    # What an older `stack up` left running: anonymous access, no plugin, no plugin file.
    old = [line for line in broker._config().splitlines() if not line.startswith("plugin")]
    Path(broker.config_file).write_text(
        "\n".join(old).replace("allow_anonymous false", "allow_anonymous true")
    )
    broker.dynsec_file.unlink()
    argv, env = broker.command()
    broker.process.spawn(argv, env=env, cwd=broker.dirs.home)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                assert not _connack(settings, None).is_failure  # the old broker: anyone may come in
                break
            except (OSError, AssertionError):
                time.sleep(0.3)
        else:
            raise AssertionError("the old-style broker did not accept an anonymous client")
    finally:
        report = control.up(stack_config)  # the upgrade: restarted with the plugin and principals
    assert all(s["healthy"] for s in report), report
    assert _connack(settings, None).value == 0x87
    assert not _connack(settings, gateway_login).is_failure  # the same generated password
