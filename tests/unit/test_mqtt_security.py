"""MQTT identities without a broker: the roles' topics, the generated configuration and
secrets, the plugin's password hashes, refused PUBACKs counted as refused, and the errors
that say what to do (docs/security.md, "Devices and MQTT")."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from config.kafka_access import KafkaAccess
from config.settings import Settings
from reference.device_registry import check_new_device
from reference.loader import DEFAULT_DIR, Device
from schemas.mqtt_packets import MQTT_5, count_puback_outcomes, count_pubacks
from schemas.mqtt_principals import (
    ADMIN,
    BRIDGE,
    GATEWAY,
    READER,
    SERVICE_PRINCIPALS,
    SINK,
    Role,
    device_role,
    service_roles,
    topic_level_problem,
)
from sensors.device_side_config import DeviceSideConfig, publishing_login
from stack.errors import StackError
from stack.mosquitto_broker import DYNSEC_PLUGIN, MosquittoBroker
from stack.mqtt_credentials import credentials_file, ensure_generated, hash_matches, password_hash
from zerocarbon import component_configs
from zerocarbon.cli import main

KAFKA = KafkaAccess("127.0.0.1:9092")  # never reached: these tests only choose an MQTT login


def _broker(tmp_path: Path, **settings: object) -> MosquittoBroker:
    config = component_configs.stack_config(
        Settings(stack_home=tmp_path / "stack", cache_dir=tmp_path / "cache", mqtt_port=21883, **settings)
    )
    return MosquittoBroker(config)


def _may(role: Role, acltype: str) -> set[str]:
    return {acl.topic for acl in role.acls if acl.acltype == acltype and acl.allow}


def test_a_device_may_publish_on_its_registry_topic_and_nothing_else() -> None:
    role = device_role("17300", "energy", "elec-17300-0001")
    assert [(a.acltype, a.topic, a.allow) for a in role.acls] == [
        ("publishClientSend", "zc/17300/energy/elec-17300-0001", True)
    ]


def test_each_service_principal_has_the_least_it_needs() -> None:
    roles = service_roles("zc-indicators", sandbox=False)
    assert set(roles) == set(SERVICE_PRINCIPALS)
    sends = {p: set().union(*(_may(r, "publishClientSend") for r in rs)) for p, rs in roles.items()}
    subscribes = {p: set().union(*(_may(r, "subscribePattern") for r in rs)) for p, rs in roles.items()}
    assert sends[BRIDGE] == set() and sends[READER] == set()
    assert subscribes[BRIDGE] == {"zc/+/+/+", "$share/+/zc/+/+/+"}
    assert sends[GATEWAY] == {"zc/+/+/+"} and subscribes[GATEWAY] == set()
    # The sink publishes the indicators and reads Mosquitto's queue figures, no other $SYS topic.
    assert sends[SINK] == {"zc-indicators/#"} and subscribes[SINK] == {
        "$SYS/broker/store/messages/count",
        "$SYS/broker/store/messages/bytes",
        "$SYS/broker/publish/messages/dropped",
    }
    assert subscribes[READER] == {"zc-indicators/#"}
    assert sends[ADMIN] == {"$CONTROL/dynamic-security/#"}
    local = service_roles("zc-indicators", sandbox=True)[GATEWAY]
    assert set().union(*(_may(r, "publishClientSend") for r in local)) == {"zc/+/+/+", "zc-sandbox/#"}


@pytest.mark.parametrize("device_id", ["", "a/b", "a+", "#", " meter", "m\n1"])
def test_a_device_id_must_be_one_topic_level(device_id: str) -> None:
    assert topic_level_problem(device_id, "device id") is not None


def test_the_broker_refuses_anonymous_clients_and_loads_the_plugin(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    conf = broker._config().splitlines()
    assert "allow_anonymous false" in conf and "allow_anonymous true" not in conf
    assert f"plugin {DYNSEC_PLUGIN}" in conf
    assert f"plugin_opt_config_file {broker.dynsec_file}" in conf
    assert DYNSEC_PLUGIN.exists(), "Debian's mosquitto package ships the plugin"


def test_generated_passwords_are_made_once_and_kept_for_the_owner_only(tmp_path: Path) -> None:
    first = ensure_generated(tmp_path, SERVICE_PRINCIPALS)
    assert set(first) == set(SERVICE_PRINCIPALS) and len(set(first.values())) == len(first)
    path = credentials_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ensure_generated(tmp_path, SERVICE_PRINCIPALS) == first
    kept = {k: v for k, v in first.items() if k != GATEWAY}
    path.write_text(json.dumps(kept))  # an entry deleted: rotated at the next `stack up`
    again = ensure_generated(tmp_path, SERVICE_PRINCIPALS)
    assert {k: again[k] for k in kept} == kept and again[GATEWAY] != first[GATEWAY]


def test_password_hashes_are_the_plugin_s_own() -> None:
    # Written by `mosquitto_ctrl dynsec init FILE admin adminpw` (Mosquitto 2.0.11).
    stored = {
        "password": "vLPB5ysgKGEhlVGhbxDCF1pSi7iWN9cuqO0r2eWeDDG4tarLeTCurBpm+c4lQzBFo"
        "AP7/Kn3AENgMykiVVmryw==",
        "salt": "auRY58nzs9QC9yCw",
        "iterations": 101,
    }
    assert hash_matches(stored, "adminpw")
    assert not hash_matches(stored, "adminpw2")
    assert hash_matches(password_hash("s3cret"), "s3cret")


def test_the_admin_is_written_into_a_new_or_older_home_keeping_what_is_there(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    broker.dirs.create()
    other = {"username": "meter-1", "roles": [{"rolename": "zc-device:meter-1"}], **password_hash("m")}
    broker.dynsec_file.write_text(json.dumps({"clients": [other], "roles": [], "defaultACLAccess": {}}))
    broker.configure()  # the broker being stopped, as `stack up` does before starting it
    state = json.loads(broker.dynsec_file.read_text())
    admin = broker.logins()[ADMIN]
    by_name = {c["username"]: c for c in state["clients"]}
    assert by_name["meter-1"] == other
    assert hash_matches(by_name[admin.username], admin.password)
    assert by_name[admin.username]["roles"] == [{"rolename": "zc-admin"}]
    assert stat.S_IMODE(broker.dynsec_file.stat().st_mode) == 0o600
    assert "zc-admin" in {r["rolename"] for r in state["roles"]}


def test_a_configured_password_wins_over_the_generated_one(tmp_path: Path) -> None:
    broker = _broker(tmp_path, mqtt_bridge_password="configured-bridge-password")
    logins = broker.logins()
    assert logins[BRIDGE].password == "configured-bridge-password"
    assert "configured-bridge-password" not in credentials_file(broker.config.home).read_text()
    assert "configured-bridge-password" not in repr(broker.config) + repr(logins[BRIDGE])


def test_config_show_never_prints_an_mqtt_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("ZC_MQTT_GATEWAY_PASSWORD", "gateway-secret-value")
    monkeypatch.setenv("ZC_STACK_HOME", str(tmp_path))
    ensure_generated(tmp_path, SERVICE_PRINCIPALS)
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "gateway-secret-value" not in out
    assert all(p not in out for p in json.loads(credentials_file(tmp_path).read_text()).values())
    assert json.loads(out.split("\n", 1)[1])["mqtt_gateway_password"] == "********"


def test_no_password_says_what_to_run(tmp_path: Path) -> None:
    settings = Settings(stack_home=tmp_path)
    with pytest.raises(StackError, match=r"zerocarbon stack up.*ZC_MQTT_BRIDGE_PASSWORD"):
        component_configs.mqtt_login(settings, BRIDGE)
    assert component_configs.device_side_config(settings).mqtt_login is None
    with pytest.raises(ValueError, match="zerocarbon stack up"):
        publishing_login(DeviceSideConfig("h", 1, KAFKA, tmp_path), None, None)
    with pytest.raises(ValueError, match="go together"):
        publishing_login(DeviceSideConfig("h", 1, KAFKA, tmp_path), "meter-1", None)


def test_a_device_may_publish_with_its_own_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "meter-1.password"
    secret.write_text("its-secret\n")
    login = publishing_login(DeviceSideConfig("h", 1, KAFKA, tmp_path), "meter-1", secret)
    assert (login.username, login.password) == ("meter-1", "its-secret")


def test_devices_are_never_written_into_the_shipped_registry() -> None:
    device = Device("meter-new", "energy", "electricity_meter", "17300", "residential", "enedis")
    with pytest.raises(ValueError, match="ZC_REFERENCE_DIR"):
        check_new_device(DEFAULT_DIR, device)


def _puback(packet_id: int, reason: int | None = None) -> bytes:
    if reason is None:
        return bytes((0x40, 2)) + packet_id.to_bytes(2, "big")
    return bytes((0x40, 3)) + packet_id.to_bytes(2, "big") + bytes((reason,))


@pytest.mark.parametrize(
    ("packets", "accepted", "refused"),
    [
        ([_puback(1, 0x10), _puback(2, 0x87), _puback(3, 0x10)], 2, 1),  # a run of 5-byte PUBACKs
        ([_puback(n, 0x87) for n in range(1, 6)], 0, 5),
        ([_puback(1), _puback(2, 0x87), _puback(3)], 2, 1),  # mixed sizes, a packet at a time
        ([_puback(1, 0x00), _puback(2, 0x10)], 2, 0),
    ],
)
def test_a_refused_publish_is_counted_apart(packets: list[bytes], accepted: int, refused: int) -> None:
    data = b"".join(packets)
    assert count_puback_outcomes(data, MQTT_5) == (accepted, refused, len(data))
    assert count_pubacks(data, MQTT_5) == (accepted + refused, len(data))
