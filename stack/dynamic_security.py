"""An admin session with Mosquitto's dynamic-security plugin: JSON commands on its control topic.

The plugin (shipped with Debian's ``mosquitto``) keeps clients, roles and ACLs in
``dynamic-security.json`` and takes changes while the broker runs, as JSON commands
published on ``$CONTROL/dynamic-security/v1`` by a client it knows as an administrator;
it answers on ``.../response``. Disabling a client disconnects its live session at once
and refuses its reconnections. Passwords travel only inside the admin's MQTT session; the
plugin stores salted hashes.

The admin itself must be in that file before the broker starts (``write_admin_client``);
then, as the admin, ``provision_service_principals`` does the rest. `zerocarbon stack up`
and, for a broker of one's own (docker/compose.yaml), `zerocarbon mqtt init` and `mqtt
setup` both go through these two functions.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from config.tls import client_tls_context
from schemas.mqtt_principals import (
    ADMIN,
    ADMIN_ROLE,
    CONTROL_RESPONSE_TOPIC,
    CONTROL_TOPIC,
    DEFAULT_ACL_ACCESS,
    MqttLogin,
    Role,
)
from stack.errors import StackError
from stack.mqtt_credentials import hash_matches, password_hash
from stack.secret_files import write_secret

Command = dict[str, Any]
CLIENT_NOT_FOUND = "Client not found"
ROLE_NOT_FOUND = "Role not found"


class DynsecCommandError(StackError):
    """The plugin refused a command; ``reason`` is its own words (``Client not found``...)."""

    def __init__(self, command: str, reason: str) -> None:
        super().__init__(f"the broker's dynamic-security plugin refused {command}: {reason}")
        self.command = command
        self.reason = reason


class DynamicSecurity:
    """One admin connection; use it as a context manager."""

    def __init__(
        self, host: str, port: int, login: MqttLogin, timeout: float = 10.0, ca_file: Path | None = None
    ) -> None:
        """``ca_file``: connect over TLS, trusting that CA."""
        self.host, self.port, self.login, self.timeout = host, port, login, timeout
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"zc-dynsec-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        self._client.username_pw_set(login.username, login.password)
        if ca_file is not None:
            self._client.tls_set_context(client_tls_context(ca_file))
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._refused: str | None = None
        self._answers: dict[str, Command] = {}
        self._answered = threading.Condition()
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_a: self._subscribed.set()
        self._client.on_message = self._on_message

    # -- session -------------------------------------------------------------------------------
    def __enter__(self) -> DynamicSecurity:
        where = f"{self.host}:{self.port}"
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise StackError(
                f"cannot reach the MQTT broker at {where} ({exc}): is the stack up? (`zerocarbon stack up`)"
            ) from exc
        self._client.loop_start()
        if not self._connected.wait(self.timeout) or self._refused is not None:
            self.close()
            if self._refused is not None:
                raise StackError(
                    f"the MQTT broker at {where} refused the admin credential of "
                    f"{self.login.username!r} ({self._refused}): set ZC_MQTT_ADMIN_USERNAME and "
                    "ZC_MQTT_ADMIN_PASSWORD to the broker's, or on the local stack run "
                    "`zerocarbon stack up`, which generates and installs it"
                )
            raise StackError(f"the MQTT broker at {where} did not answer the admin's connection")
        self._client.subscribe(CONTROL_RESPONSE_TOPIC, qos=1)
        if not self._subscribed.wait(self.timeout):
            self.close()
            raise StackError(f"the MQTT broker at {where} did not acknowledge the admin's subscription")
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        if reason.is_failure:
            self._refused = str(reason)
        self._connected.set()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            responses = json.loads(message.payload).get("responses", [])
        except (ValueError, AttributeError):
            return
        with self._answered:
            for response in responses:
                if isinstance(response, dict) and "correlationData" in response:
                    self._answers[str(response["correlationData"])] = response
            self._answered.notify_all()

    # -- commands ------------------------------------------------------------------------------
    def run(self, commands: Sequence[Command]) -> list[Command]:
        """Send ``commands`` in one message; their responses, in order (an error is a
        response with an ``error`` key)."""
        tag = uuid.uuid4().hex
        tagged = [{**c, "correlationData": f"{tag}-{n}"} for n, c in enumerate(commands)]
        wanted = [str(c["correlationData"]) for c in tagged]
        self._client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)
        with self._answered:
            if not self._answered.wait_for(lambda: all(w in self._answers for w in wanted), self.timeout):
                raise StackError(
                    f"the MQTT broker at {self.host}:{self.port} did not answer a dynamic-security "
                    "command: is the plugin loaded (`plugin` in mosquitto.conf)?"
                )
            return [self._answers.pop(w) for w in wanted]

    def call(self, command: Command) -> Command:
        """One command; its response's ``data`` ({} if none); raise if the plugin refused it."""
        response = self.run([command])[0]
        if "error" in response:
            raise DynsecCommandError(str(command["command"]), str(response["error"]))
        data: Command = response.get("data", {})
        return data

    # -- what the stack and `zerocarbon devices` need ------------------------------------------
    def set_default_access(self, access: dict[str, bool]) -> None:
        acls = [{"acltype": kind, "allow": allow} for kind, allow in access.items()]
        self.call({"command": "setDefaultACLAccess", "acls": acls})

    def ensure_role(self, role: Role) -> None:
        """Create ``role``, or bring an existing one's ACLs to exactly these."""
        try:
            existing = self.call({"command": "getRole", "rolename": role.name})["role"].get("acls", [])
        except DynsecCommandError as exc:
            if exc.reason != ROLE_NOT_FOUND:
                raise
            acls = [acl.as_dynsec() for acl in role.acls]
            self.call({"command": "createRole", "rolename": role.name, "acls": acls})
            return
        have = {(a["acltype"], a["topic"], bool(a["allow"])) for a in existing}
        want = {(a.acltype, a.topic, a.allow) for a in role.acls}
        for acltype, topic, _ in have - want:
            self.call({"command": "removeRoleACL", "rolename": role.name, "acltype": acltype, "topic": topic})
        for acltype, topic, allow in want - have:
            self.call(
                {
                    "command": "addRoleACL", "rolename": role.name, "acltype": acltype,
                    "topic": topic, "allow": allow, "priority": 0,
                }
            )  # fmt: skip

    def get_client(self, username: str) -> Command | None:
        """The plugin's record of a client (``disabled``, ``roles``...), None if it has none."""
        try:
            client: Command = self.call({"command": "getClient", "username": username})["client"]
        except DynsecCommandError as exc:
            if exc.reason == CLIENT_NOT_FOUND:
                return None
            raise
        return client

    def ensure_client(
        self, login: MqttLogin, roles: Iterable[str], text_name: str, password_current: bool = False
    ) -> None:
        """Create the client, or give it exactly these roles and, unless ``password_current``,
        this password (a client an operator disabled stays disabled). The plugin disconnects
        a client whose password or roles change: only what differs is changed."""
        wanted = list(roles)
        existing = self.get_client(login.username)
        if existing is None:
            self.create_client(login, wanted, text_name)
            return
        if not password_current:
            self.set_password(login.username, login.password)
        have = {r["rolename"] for r in existing.get("roles", [])}
        for name in have - set(wanted):
            self.call({"command": "removeClientRole", "username": login.username, "rolename": name})
        for name in set(wanted) - have:
            self.call({"command": "addClientRole", "username": login.username, "rolename": name})

    def create_client(self, login: MqttLogin, roles: Iterable[str], text_name: str) -> None:
        self.call(
            {
                "command": "createClient", "username": login.username, "password": login.password,
                "textname": text_name, "roles": [{"rolename": r} for r in roles],
            }
        )  # fmt: skip

    def delete_client(self, username: str) -> None:
        self.call({"command": "deleteClient", "username": username})

    def delete_role(self, name: str) -> None:
        self.call({"command": "deleteRole", "rolename": name})

    def set_password(self, username: str, password: str) -> None:
        """A new password; the plugin disconnects the client's live session (seen on 2.0.11)."""
        self.call({"command": "setClientPassword", "username": username, "password": password})

    def disable_client(self, username: str) -> None:
        """Refuse the client from now on; its live session is disconnected at once."""
        self.call({"command": "disableClient", "username": username})

    def enable_client(self, username: str) -> None:
        self.call({"command": "enableClient", "username": username})

    def clients(self) -> dict[str, BrokerClient]:
        """Every client the plugin knows, by user name."""
        data = self.call({"command": "listClients", "verbose": True, "count": -1, "offset": 0})
        return {
            str(c["username"]): BrokerClient(
                bool(c.get("disabled", False)), tuple(str(r["rolename"]) for r in c.get("roles", []))
            )
            for c in data.get("clients", [])
        }


@dataclass(frozen=True, slots=True)
class BrokerClient:
    """What the plugin says of one client: disabled (revoked) or not, and its roles."""

    disabled: bool
    roles: tuple[str, ...]


def write_admin_client(dynsec_file: Path, admin: MqttLogin) -> bool:
    """Put the admin client (and its role) in the plugin's file, the broker being stopped:
    created for a new broker or an older file, its password hash renewed if it changed.
    True when the file was written."""
    state: dict[str, Any] = {"clients": [], "roles": [], "defaultACLAccess": DEFAULT_ACL_ACCESS}
    if dynsec_file.exists():
        try:
            state = json.loads(dynsec_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise StackError(
                f"{dynsec_file} is not valid JSON ({exc}); restore it from a backup, or delete it "
                "and set the broker up again (`zerocarbon stack up`; for a broker of your own, "
                "`zerocarbon mqtt init` then `mqtt setup`): devices must then be added again"
            ) from exc
    clients = [c for c in state.get("clients", []) if c.get("username") != admin.username]
    entry = next((c for c in state.get("clients", []) if c.get("username") == admin.username), None)
    if entry is None or not hash_matches(entry, admin.password):
        entry = {
            "username": admin.username,
            "textName": "zerocarbon stack admin",
            **password_hash(admin.password),
        }
    entry["roles"] = [{"rolename": ADMIN_ROLE.name}]
    entry.pop("disabled", None)
    roles = [r for r in state.get("roles", []) if r.get("rolename") != ADMIN_ROLE.name]
    roles.append({"rolename": ADMIN_ROLE.name, "acls": [acl.as_dynsec() for acl in ADMIN_ROLE.acls]})
    updated = {**state, "clients": [*clients, entry], "roles": roles}
    if dynsec_file.exists() and updated == state:
        return False
    write_secret(dynsec_file, json.dumps(updated, indent=1) + "\n")
    return True


def stored_clients(dynsec_file: Path) -> dict[str, dict[str, Any]]:
    """The plugin's client entries as it saved them (user name -> entry with the hash); empty
    when the file cannot be read."""
    try:
        state = json.loads(dynsec_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(c.get("username")): c for c in state.get("clients", []) if isinstance(c, dict)}


def provision_service_principals(
    dynsec: DynamicSecurity,
    logins: Mapping[str, MqttLogin],
    roles: Mapping[str, tuple[Role, ...]],
    password_current: Callable[[MqttLogin], bool],
) -> None:
    """As the admin: deny by default, then every role and every service principal but the
    admin (already in the plugin's file). ``password_current`` says whether the broker
    already holds a login's password: only what differs is changed, since the plugin
    disconnects a client whose password or roles change."""
    dynsec.set_default_access(DEFAULT_ACL_ACCESS)
    for role in {r.name: r for rs in roles.values() for r in rs}.values():
        dynsec.ensure_role(role)
    for principal, login in logins.items():
        if principal == ADMIN:
            continue
        dynsec.ensure_client(
            login,
            [r.name for r in roles[principal]],
            f"zerocarbon {principal}",
            password_current=password_current(login),
        )
