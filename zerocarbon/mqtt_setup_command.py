"""`zerocarbon mqtt init | setup`: a Mosquitto deployed apart (docker/compose.yaml) given what
`zerocarbon stack up` gives the local one — the admin in the dynamic-security plugin's file,
then the default denial, the roles and each service principal with its password. It generates
no password: a deployment sets every one."""

from __future__ import annotations

import argparse
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from config.settings import Settings
from config.tls import client_tls_context
from schemas.mqtt_principals import ADMIN, SERVICE_PRINCIPALS, MqttLogin, service_roles
from stack.dynamic_security import DynamicSecurity, provision_service_principals, write_admin_client
from stack.errors import StackError
from zerocarbon.component_configs import mqtt_ca_file, mqtt_configured_passwords, mqtt_usernames

HELP = "set up Mosquitto's logins and roles (a broker of your own): the admin (init), then the rest (setup)"
DESCRIPTION = (
    "For a Mosquitto deployed apart, with the dynamic-security plugin. `init`, the broker being "
    "stopped: write the admin client (ZC_MQTT_ADMIN_USERNAME, ZC_MQTT_ADMIN_PASSWORD) into the "
    "plugin's file (--dynsec-file; --owner UID:GID gives it and its folder to the broker's "
    "user). `setup`, the broker serving: as that admin, at ZC_MQTT_HOST:ZC_MQTT_PORT over TLS "
    "(ZC_TLS_CA_FILE), deny everything by default, create or correct the roles, and give each "
    "service principal the password its ZC_MQTT_<PRINCIPAL>_PASSWORD sets, changing only what "
    "differs (a client whose password or roles change is disconnected). Idempotent. Every "
    "password must be set: none is generated outside the local stack, where `zerocarbon stack up` "
    "does all this. See docs/security.md."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["init", "setup"])
    parser.add_argument(
        "--dynsec-file",
        type=Path,
        help="init: the plugin's file (plugin_opt_config_file of mosquitto.conf)",
    )
    parser.add_argument(
        "--owner",
        type=_owner,
        metavar="UID:GID",
        help="init: the broker's user and group, who must own that file and its folder",
    )


def _owner(value: str) -> tuple[int, int]:
    uid, _, gid = value.partition(":")
    if not uid.isdigit() or not gid.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not UID:GID (e.g. 1883:1883)")
    return int(uid), int(gid)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """StackError naming the passwords to set when one is missing."""
    if args.action == "init":
        if args.dynsec_file is None:
            raise StackError("`zerocarbon mqtt init` needs --dynsec-file, the plugin's file")
        admin = _logins(settings, (ADMIN,), "init")[ADMIN]
        written = write_admin_client(args.dynsec_file, admin)
        if args.owner is not None:
            for path in (args.dynsec_file, args.dynsec_file.parent):
                os.chown(path, *args.owner)
        state = "written to" if written else "already current in"
        print(f"[mqtt] admin {admin.username} {state} {args.dynsec_file}", flush=True)
        return 0
    logins = _logins(settings, SERVICE_PRINCIPALS, "setup")
    # The sandbox topics are the local stack's only.
    roles = service_roles(settings.sink_mqtt_topic_root, sandbox=False)
    ca_file = mqtt_ca_file(settings)
    with DynamicSecurity(settings.mqtt_host, settings.mqtt_port, logins[ADMIN], ca_file=ca_file) as dynsec:
        provision_service_principals(
            dynsec,
            logins,
            roles,
            password_current=lambda login: _accepted(settings.mqtt_host, settings.mqtt_port, login, ca_file),
        )
    names = sorted(login.username for login in logins.values())
    print(f"[mqtt] default denial, roles and principals {', '.join(names)} set", flush=True)
    return 0


def _logins(settings: Settings, principals: tuple[str, ...], action: str) -> dict[str, MqttLogin]:
    passwords = mqtt_configured_passwords(settings)
    unset = [p for p in principals if p not in passwords]
    if unset:
        raise StackError(
            f"`zerocarbon mqtt {action}` generates no password: set "
            + ", ".join(f"ZC_MQTT_{p.upper()}_PASSWORD" for p in unset)
        )
    usernames = mqtt_usernames(settings)
    return {p: MqttLogin(usernames[p], passwords[p]) for p in principals}


def _accepted(host: str, port: int, login: MqttLogin, ca_file: Path | None, timeout: float = 10.0) -> bool:
    """Whether the broker takes ``login`` as it is: one throw-away connection under a client id
    of its own (clean start, no session kept), which leaves a running service's session alone.
    The local stack compares the hashes of the plugin's file instead, which a broker of one's
    own keeps out of this process's reach."""
    answer: list[bool] = []
    answered = threading.Event()

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        answer.append(not reason.is_failure)
        answered.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"zc-setup-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
    )
    client.username_pw_set(login.username, login.password)
    if ca_file is not None:
        client.tls_set_context(client_tls_context(ca_file))
    client.on_connect = on_connect
    client.reconnect_delay_set(60, 120)  # one attempt
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0
    client.connect(host, port, keepalive=10, clean_start=True, properties=properties)
    client.loop_start()
    try:
        return answered.wait(timeout) and answer[0]
    finally:
        client.disconnect()
        client.loop_stop()
