"""Eclipse Mosquitto from Debian's packages, with a generated, persistent configuration.

No anonymous access: Mosquitto's dynamic-security plugin authenticates every client and
holds each role's topics (schemas/mqtt_principals.py). ``stack up`` generates the service
principals' passwords once (stack/mqtt_credentials.py), writes the plugin's file with the
admin client before the broker starts, then, as that admin, creates the roles and the other
service clients (idempotently: only what differs is changed, since the plugin disconnects a
client whose password or roles change).
"""

from __future__ import annotations

import getpass
import sysconfig
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from config.tls import client_tls_context
from schemas.mqtt_principals import ADMIN, SERVICE_PRINCIPALS, MqttLogin, service_roles
from stack.certificate_authority import ServerCertificate, ensure_server_certificate
from stack.debian_packages import ensure_packages
from stack.dynamic_security import (
    DynamicSecurity,
    provision_service_principals,
    stored_clients,
    write_admin_client,
)
from stack.errors import StackError
from stack.layout import service_dirs
from stack.mqtt_credentials import ensure_generated, hash_matches, read_generated
from stack.service import LocalService, write_if_changed
from stack.stack_config import StackConfig

MOSQUITTO = "/usr/sbin/mosquitto"
# Shipped by Debian's `mosquitto` package in the multiarch library folder.
DYNSEC_PLUGIN = (
    Path("/usr/lib") / str(sysconfig.get_config_var("MULTIARCH") or "") / ("mosquitto_dynamic_security.so")
)
CLIENT_PACKAGES = {
    "mosquitto": MOSQUITTO,
    # Operators' and tests' outside clients: mosquitto_pub/sub and kcat.
    "mosquitto-clients": "/usr/bin/mosquitto_pub",
    "kcat": "/usr/bin/kcat",
}


class MosquittoBroker(LocalService):
    """An MQTT 3.1.1/5 broker on the loopback, persisting sessions and queued QoS 1 messages."""

    name = "mosquitto"
    ready_timeout = 30.0

    def __init__(self, config: StackConfig) -> None:
        super().__init__(service_dirs(config.home, self.name, config.mosquitto_data_dir))
        self.config = config

    @property
    def endpoint(self) -> str:
        return f"{self.config.bind_host}:{self.config.mqtt_port}"

    @property
    def ports(self) -> tuple[int, ...]:
        plain = (self.config.mqtt_plain_port,) if self.config.mqtt_tls and self.config.mqtt_plain_port else ()
        return (self.config.mqtt_port, *plain)

    def _own_endpoint(self) -> tuple[str, int, Path | None]:
        """Where the stack itself talks to the broker (its probe, its admin): the loopback
        plaintext listener when there is one, else the clients' (with TLS, the CA file)."""
        c = self.config
        if not c.mqtt_tls:
            return c.bind_host, c.mqtt_port, None
        if c.mqtt_plain_port:
            return "127.0.0.1", c.mqtt_plain_port, None
        return self._tls_host(), c.mqtt_port, self._certificate().ca_file

    def _tls_host(self) -> str:
        """The clients' listener's address, as a name its certificate carries."""
        every = ("", "0.0.0.0", "::")
        return "127.0.0.1" if self.config.bind_host in every else self.config.bind_host

    def _certificate(self) -> ServerCertificate:
        names = (self.config.bind_host, *self.config.tls_names)
        return ensure_server_certificate(self.config.home, tuple(n for n in names if n))

    def _listeners(self) -> list[str]:
        c = self.config
        if not c.mqtt_tls:
            return [f"listener {c.mqtt_port} {c.bind_host}"]
        tls = self._certificate()
        lines = [
            f"listener {c.mqtt_port} {c.bind_host}",
            f"cafile {tls.ca_file}",
            f"certfile {tls.cert_file}",
            f"keyfile {tls.key_file}",
            "tls_version tlsv1.2",
        ]
        if c.mqtt_plain_port:
            # Plaintext, for local tools only: bound to the loopback whatever bind_host is.
            lines.append(f"listener {c.mqtt_plain_port} 127.0.0.1")
        return lines

    @property
    def config_file(self) -> str:
        return str(self.dirs.config_dir / "mosquitto.conf")

    @property
    def dynsec_file(self) -> Path:
        """The plugin's clients, roles and ACLs (salted password hashes): broker state."""
        return self.dirs.data / "dynamic-security.json"

    def install(self) -> None:
        ensure_packages(CLIENT_PACKAGES)
        if not DYNSEC_PLUGIN.exists():
            raise StackError(
                f"Mosquitto's dynamic-security plugin is missing ({DYNSEC_PLUGIN}); it comes with "
                "Debian's `mosquitto` package (2.0 or later): reinstall it"
            )

    def logins(self, generate: bool = True) -> dict[str, MqttLogin]:
        """Each service principal's login: the configured password, else the generated one
        (made now with ``generate``; without, principals with none yet are left out)."""
        configured = self.config.mqtt_passwords
        others = [p for p in SERVICE_PRINCIPALS if p not in configured]
        generated = (
            ensure_generated(self.config.home, others) if generate else read_generated(self.config.home)
        )
        passwords = {**generated, **configured}
        return {
            p: MqttLogin(self.config.mqtt_usernames[p], passwords[p])
            for p in SERVICE_PRINCIPALS
            if p in passwords
        }

    def _config(self) -> str:
        return "\n".join(
            [
                "# Generated by `zerocarbon stack up` from the service settings; edits are lost.",
                *self._listeners(),
                # Every client authenticates; the plugin holds who may use which topics.
                "allow_anonymous false",
                f"plugin {DYNSEC_PLUGIN}",
                f"plugin_opt_config_file {self.dynsec_file}",
                # Run as the invoking user so data and log files stay theirs (mosquitto would
                # otherwise drop root privileges to the `mosquitto` account).
                f"user {getpass.getuser()}",
                # Persistence: persistent sessions (clean start off) and their queued QoS 1
                # messages survive a broker restart; saved on shutdown and every 30 s.
                "persistence true",
                f"persistence_location {self.dirs.data}/",
                "autosave_interval 30",
                # Devices may be offline for a while and the bridge may lag: queue generously
                # per session, bounded in bytes so a dead client cannot exhaust memory.
                f"max_queued_messages {self.config.mqtt_max_queued_messages}",
                f"max_queued_bytes {self.config.mqtt_max_queued_bytes}",
                "max_inflight_messages 1000",
                "message_size_limit 10485760",
                "persistent_client_expiration 14d",
                "log_dest stdout",
                "log_type error",
                "log_type warning",
                "log_type notice",
                "log_type information",
                "connection_messages true",
                "log_timestamp_format %Y-%m-%dT%H:%M:%S",
                "",
            ]
        )

    def configure(self) -> None:
        write_if_changed(self.dirs.config_dir / "mosquitto.conf", self._config())
        write_admin_client(self.dynsec_file, self.logins()[ADMIN])

    def configuration_changed(self) -> bool:
        """The plugin, for one, is only loaded at start."""
        config_file = Path(self.config_file)
        return config_file.exists() and config_file.read_text() != self._config()

    def after_ready(self) -> None:
        """As the admin: deny by default, then the roles and the service principals."""
        logins = self.logins()
        roles = service_roles(self.config.indicator_topic_root, sandbox=True)
        stored = stored_clients(self.dynsec_file)
        host, port, ca_file = self._own_endpoint()
        with DynamicSecurity(host, port, logins[ADMIN], ca_file=ca_file) as dynsec:
            provision_service_principals(
                dynsec,
                logins,
                roles,
                password_current=lambda login: hash_matches(stored.get(login.username, {}), login.password),
            )
        if self.config.mqtt_tls and port != self.config.mqtt_port:
            # The clients' TLS listener, checked as a client sees it: certificate, name, login.
            healthy, _, detail = self._probe_at(
                self._tls_host(), self.config.mqtt_port, self._certificate().ca_file
            )
            if not healthy:
                raise StackError(
                    f"mosquitto: the TLS listener on port {self.config.mqtt_port} fails: {detail}"
                )

    def command(self) -> tuple[Sequence[str], Mapping[str, str] | None]:
        return [MOSQUITTO, "-c", self.config_file], None

    def probe(self) -> tuple[bool, str | None, str]:
        """Connect over MQTT as the admin and read the broker's own version from
        ``$SYS/broker/version``."""
        return self._probe_at(*self._own_endpoint())

    def _probe_at(self, host: str, port: int, ca_file: Path | None) -> tuple[bool, str | None, str]:
        admin = self.logins(generate=False).get(ADMIN)
        if admin is None:
            return False, None, "no admin credential yet: run `zerocarbon stack up`"
        got: dict[str, str] = {}
        done = threading.Event()

        def on_connect(client: mqtt.Client, _u: object, _f: object, rc: Any, _p: object) -> None:
            got["rc"] = str(rc)
            if rc.is_failure:
                done.set()
                return
            client.subscribe("$SYS/broker/version", qos=0)

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            got["version"] = msg.payload.decode(errors="replace")
            done.set()

        host, port, ca_file = self._own_endpoint()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv5)
        client.username_pw_set(admin.username, admin.password)
        if ca_file is not None:
            client.tls_set_context(client_tls_context(ca_file))
        client.on_connect = on_connect
        client.on_message = on_message
        try:
            client.connect(host, port, keepalive=5)
        except OSError as exc:
            return False, None, f"connect failed: {exc}"
        client.loop_start()
        try:
            done.wait(3.0)
        finally:
            client.disconnect()
            client.loop_stop()
        if "version" not in got:
            if got.get("rc") in ("Not authorized", "Bad user name or password"):
                return (
                    False,
                    None,
                    (
                        f"the broker refused the admin credential ({got['rc']}): `zerocarbon stack down`, "
                        "then `zerocarbon stack up` writes it again while the broker is stopped"
                    ),
                )
            return False, None, f"connected (rc={got.get('rc')}) but $SYS/broker/version unanswered"
        version = got["version"].removeprefix("mosquitto version ")
        over = "TLS" if ca_file is not None else "plaintext (loopback)"
        return True, version, f"accepts authenticated MQTT connections ({over} on {port})"
