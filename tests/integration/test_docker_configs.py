"""docker/'s broker configurations on the real brokers (docs/deployment.md). No Docker engine
runs the suite, so each broker runs here as a local process, from the very files compose
mounts, with only the container's addresses and paths moved (the substitutions below):
Kafka's jars with docker/kafka/server.properties through docker/kafka/start.sh, Debian's
Mosquitto with docker/mosquitto/mosquitto.conf. The one-shots run as compose runs them:
`zerocarbon tls issue`, `zerocarbon kafka setup`, `zerocarbon mqtt init` and `mqtt setup`,
every password configured, none generated.

These brokers use free ports and folders of their own, not the isolated stack, which this
module does not start; it holds the stack's lock all the same, as every run of heavy
processes on this machine does (benchmarks measure beside them otherwise).
"""

from __future__ import annotations

import asyncio
import getpass
import ipaddress
import os
import re
import secrets
import shlex
import shutil
import socket
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas import kafka_principals, mqtt_principals
from schemas.catalogue import INDICATOR_TOPIC, raw_topic
from schemas.device_topics import DEVICE_FILTER, device_topic
from schemas.mqtt_principals import MqttLogin
from stack import isolated_stack
from stack.kafka_broker import BROKER, BROKER_USERNAME, KafkaBroker, new_cluster_id
from stack.mosquitto_broker import DYNSEC_PLUGIN, MOSQUITTO, MosquittoBroker
from streams.kafka_admin import records_after, topic_ends
from tests.free_ports import free_port
from tests.integration.broker_clients import NOT_AUTHORIZED, Client, send_one
from tests.integration.docker_processes import moved, run_zerocarbon, start_cluster, stop, stop_all
from zerocarbon.component_configs import stack_config

DOCKER = Path(__file__).resolve().parents[2] / "docker"
COMPOSE = DOCKER / "compose.yaml"
# The broker's own password goes through Kafka's JAAS configuration: any character but a
# double quote or a backslash (docker/kafka/start.sh refuses those), spaces and $ included.
BROKER_PASSWORD = f"b r$o{{k}}e;r%'{secrets.token_urlsafe(8)}"


@pytest.fixture(scope="session")
def local_stack(settings: Settings) -> Settings:
    """In place of the isolated stack (conftest.py): its lock only. Benchmarks measure on this
    machine; these brokers wait for them, and they for these."""
    isolated_stack.hold_instance()
    return settings


@dataclass(frozen=True)
class Delivered:
    """What `zerocarbon tls issue` made (``home``) and copied for each container."""

    home: Path
    kafka: Path
    mosquitto: Path
    clients: Path

    @property
    def ca_file(self) -> Path:
        return self.clients / "ca.crt"


@pytest.fixture(scope="module")
def delivered(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Delivered:
    """compose's one-shot `tls`; the brokers' copies owned by this test's user (compose gives
    them to the images' users, 1000 and 1883: only root may)."""
    base = tmp_path_factory.mktemp("tls")
    made = Delivered(base / "home", base / "kafka-tls", base / "mosquitto-tls", base / "clients")
    owner = f"{os.getuid()}:{os.getgid()}"
    done = _tls_issue(made, owner)
    assert done.returncode == 0, done.stderr
    return made


def _tls_issue(made: Delivered, owner: str) -> subprocess.CompletedProcess[str]:
    return run_zerocarbon(
        {"ZC_STACK_HOME": str(made.home)},
        "tls", "issue", "--name=kafka-1", "--name=kafka-2", "--name=kafka-3", "--name=mosquitto",
        "--name=localhost",
        f"--deliver-server={made.kafka}:{owner}", f"--deliver-server={made.mosquitto}:{owner}",
        f"--deliver-ca={made.clients}",
    )  # fmt: skip


def test_tls_issue_hands_each_container_its_files_and_keeps_the_cas_key(delivered: Delivered) -> None:
    for broker in (delivered.kafka, delivered.mosquitto):
        names = {path.name: stat.S_IMODE(path.stat().st_mode) for path in broker.iterdir()}
        assert names == {
            "ca.crt": 0o644, "server.crt": 0o644, "server.key": 0o600, "server-keystore.pem": 0o600
        }  # fmt: skip
        assert stat.S_IMODE(broker.stat().st_mode) == 0o700
    assert [path.name for path in delivered.clients.iterdir()] == ["ca.crt"]
    assert (delivered.home / "tls" / "ca.key").exists()
    # Once per `up`: a second run issues nothing and copies nothing.
    again = _tls_issue(delivered, f"{os.getuid()}:{os.getgid()}")
    assert again.returncode == 0, again.stderr
    assert "issuing" not in again.stdout and "copied" not in again.stdout, again.stdout


# -- Kafka ------------------------------------------------------------------------------------


NODES = (1, 2, 3)


@dataclass(frozen=True)
class Kafka:
    broker: KafkaBroker  # the local stack's, for its jars and its JVM command line
    bootstrap: str  # node 1's clients' listener
    internal_port: int  # node 1's inter-broker listener
    passwords: dict[str, str]  # principal -> password, the broker's included
    ca_file: Path
    kafka_tls: Path  # what compose mounts at /etc/zerocarbon/kafka-tls

    def access(self, principal: str) -> KafkaAccess:
        username = kafka_principals.DEFAULT_USERNAMES[principal]
        return KafkaAccess(self.bootstrap, username, self.passwords[principal], ca_file=self.ca_file)


@pytest.fixture(scope="module")
def kafka(
    settings: Settings, delivered: Delivered, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Kafka]:
    """docker/kafka/start.sh with docker/kafka/server.properties, as the three kafka-N services
    run them (each with its node id, its name and its volume; one cluster id), then `zerocarbon
    kafka setup` as kafka-setup runs it (the broker's login on node 1's inter-broker listener
    at localhost, over TLS; the admin over SASL_SSL)."""
    base = tmp_path_factory.mktemp("kafka")
    ports = {node: (free_port(), free_port(), free_port()) for node in NODES}  # client, controller, internal
    passwords = {BROKER: BROKER_PASSWORD}
    passwords |= {p: secrets.token_urlsafe(16) for p in kafka_principals.SERVICE_PRINCIPALS}
    broker = KafkaBroker(
        stack_config(
            Settings(
                stack_home=base / "home",
                cache_dir=settings.cache_dir,
                kafka_version=settings.kafka_version,
                kafka_broker_password=BROKER_PASSWORD,
            )
        )
    )
    broker.install()
    template = (DOCKER / "kafka" / "server.properties").read_text()
    voters = [(f"{node}@kafka-{node}:9093", f"{node}@127.0.0.1:{ports[node][1]}") for node in NODES]
    starts = []
    for node in NODES:
        client, controller, internal = ports[node]
        config = base / f"config-{node}"  # what compose mounts at /etc/zerocarbon/kafka
        config.mkdir()
        shutil.copy(DOCKER / "kafka" / "start.sh", config / "start.sh")
        (config / "server.properties").write_text(
            moved(
                template,
                [
                    # Not beyond this machine, and one port per node where each container has its own.
                    ("CLIENT://0.0.0.0:9092", f"CLIENT://127.0.0.1:{client}"),
                    ("CONTROLLER://0.0.0.0:9093", f"CONTROLLER://127.0.0.1:{controller}"),
                    ("INTERNAL://0.0.0.0:9094", f"INTERNAL://127.0.0.1:{internal}"),
                    # Advertised: the node's name still from its environment, its port here.
                    ("}:9092", f"}}:{client}"),
                    ("}:9094", f"}}:{internal}"),
                    *voters,
                    ("/etc/zerocarbon/kafka-tls/", f"{delivered.kafka}/"),
                    ("/var/lib/kafka/data", str(base / f"data-{node}")),
                ],
            )
        )
        starts.append((config / "start.sh", {"ZC_KAFKA_NODE_ID": str(node)}))
    # The image's bin/ scripts, as wrappers around the jars the local stack runs.
    kafka_home = base / "opt-kafka"
    (kafka_home / "bin").mkdir(parents=True)
    for script, main in (
        ("kafka-storage.sh", "kafka.tools.StorageTool"),
        ("kafka-server-start.sh", "kafka.Kafka"),
    ):
        wrapper = kafka_home / "bin" / script
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.join(broker._jvm(main))} "$@"\n')
        wrapper.chmod(0o755)
    broker.dirs.config_dir.mkdir(parents=True, exist_ok=True)
    (broker.dirs.config_dir / "log4j2.properties").write_text(
        "appender.err.type = Console\nappender.err.name = err\nappender.err.target = SYSTEM_ERR\n"
        "appender.err.layout.type = PatternLayout\nappender.err.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = info\nrootLogger.appenderRef.err.ref = err\n"
    )
    environment = {
        **os.environ, "KAFKA_HOME": str(kafka_home), "ZC_KAFKA_BROKER_PASSWORD": BROKER_PASSWORD,
        "ZC_KAFKA_NODE_HOST": "localhost", "ZC_KAFKA_CLUSTER_ID": new_cluster_id(),
    }  # fmt: skip
    own_login = KafkaAccess(
        f"localhost:{ports[1][2]}",
        BROKER_USERNAME,
        BROKER_PASSWORD,
        ca_file=delivered.ca_file,
        mechanism="PLAIN",
    )
    procs = start_cluster(starts, environment, own_login, base)
    try:
        setup = run_zerocarbon(
            {
                "ZC_STACK_HOME": str(base / "home"),
                "ZC_KAFKA_HOST": "localhost",
                "ZC_KAFKA_PORT": str(ports[1][0]),
                "ZC_KAFKA_INTERNAL_PORT": str(ports[1][2]),
                "ZC_KAFKA_INTERNAL_TLS": "true",
                "ZC_KAFKA_REPLICATION_FACTOR": "3",
                "ZC_TLS_CA_FILE": str(delivered.ca_file),
                **{f"ZC_KAFKA_{p.upper()}_PASSWORD": password for p, password in passwords.items()},
            },
            "kafka", "setup",
        )  # fmt: skip
        assert setup.returncode == 0, f"{setup.stdout}\n{setup.stderr}"
        # As after `docker compose restart`: start.sh on a formatted volume keeps its cluster
        # id, and the principals kafka-setup made are in KRaft's metadata log.
        stop_all(procs)
        procs = start_cluster(starts, environment, own_login, base)
        yield Kafka(
            broker, f"localhost:{ports[1][0]}", ports[1][2], passwords, delivered.ca_file, delivered.kafka
        )
    finally:
        stop_all(procs)


def test_docker_kafka_takes_the_bridges_readings_and_nothing_beyond_its_rights(kafka: Kafka) -> None:
    admin, bridge = kafka.access(kafka_principals.ADMIN), kafka.access(kafka_principals.BRIDGE)
    marker = f'{{"test": "{uuid.uuid4().hex}"}}'.encode()
    ends = asyncio.run(topic_ends(admin, [raw_topic("energy")]))
    asyncio.run(send_one(bridge, raw_topic("energy"), marker))
    assert (raw_topic("energy"), marker) in asyncio.run(records_after(admin, ends))
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(send_one(bridge, INDICATOR_TOPIC, b"{}"))


def test_docker_kafka_refuses_a_client_without_credentials_or_without_tls(kafka: Kafka) -> None:
    bridge = kafka.access(kafka_principals.BRIDGE)
    assert bridge.username is not None and bridge.password is not None
    attempts = {
        "anonymous over TLS": KafkaAccess(kafka.bootstrap, ca_file=kafka.ca_file),
        "plaintext, no TLS": KafkaAccess(kafka.bootstrap, bridge.username, bridge.password),
        "wrong password": bridge.as_principal(bridge.username, bridge.password + "x"),
        "the broker's own login, on the clients' listener": KafkaAccess(
            kafka.bootstrap, "zc-broker", BROKER_PASSWORD, ca_file=kafka.ca_file, mechanism="PLAIN"
        ),
    }
    for what, access in attempts.items():
        with pytest.raises(KafkaConnectionError):
            asyncio.run(asyncio.wait_for(send_one(access, raw_topic("energy"), b"{}"), timeout=30))
        print(f"refused: {what}")


HEALTHCHECK_CLIENT = """\
import java.io.FileReader;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;

/** What kafka-broker-api-versions.sh does with --command-config: an admin client from the file. */
public class Healthcheck {
    public static void main(String[] args) throws Exception {
        Properties config = new Properties();
        try (FileReader file = new FileReader(args[1])) { config.load(file); }
        config.put("bootstrap.servers", args[0]);
        config.put("request.timeout.ms", "10000");
        config.put("default.api.timeout.ms", "15000");
        try (Admin admin = Admin.create(config)) {
            System.out.println(admin.describeCluster().nodes().get(20, TimeUnit.SECONDS));
        }
    }
}
"""


def test_the_kafka_healthchecks_client_configuration_logs_in_as_the_broker(
    kafka: Kafka, tmp_path: Path
) -> None:
    """docker/kafka/internal-client.properties, which the kafka service's healthcheck passes to
    kafka-broker-api-versions.sh, takes the broker's password from the environment: Kafka's
    clients resolve the env config provider as its broker does."""
    source = tmp_path / "Healthcheck.java"
    source.write_text(HEALTHCHECK_CLIENT)
    client_config = tmp_path / "internal-client.properties"
    client_config.write_text(
        moved(
            (DOCKER / "kafka" / "internal-client.properties").read_text(),
            [("/etc/zerocarbon/kafka-tls/", f"{kafka.kafka_tls}/")],
        )
    )
    argv = kafka.broker._jvm(str(source), f"localhost:{kafka.internal_port}", str(client_config))
    results = {
        password: subprocess.run(
            argv, env={**os.environ, "ZC_KAFKA_BROKER_PASSWORD": password}, capture_output=True, text=True,
            timeout=120,
        )
        for password in (BROKER_PASSWORD, BROKER_PASSWORD + "x")
    }  # fmt: skip
    right, wrong = results[BROKER_PASSWORD], results[BROKER_PASSWORD + "x"]
    assert right.returncode == 0, right.stderr[-3000:]
    assert f"localhost:{kafka.internal_port}" in right.stdout or "id: 1" in right.stdout, right.stdout
    assert wrong.returncode != 0 and "Authentication failed" in wrong.stderr, wrong.stderr[-3000:]


# -- Mosquitto ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mosquitto:
    pid: int
    port: int
    settings: Settings  # a client's: this broker, over TLS, trusting the delivered CA
    logins: dict[str, MqttLogin]
    setup_env: dict[str, str]  # what mqtt-setup is given


@pytest.fixture(scope="module")
def mosquitto(
    settings: Settings, delivered: Delivered, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mosquitto]:
    """`zerocarbon mqtt init` as mqtt-init runs it, Debian's mosquitto with
    docker/mosquitto/mosquitto.conf, then `zerocarbon mqtt setup` as mqtt-setup runs it."""
    base = tmp_path_factory.mktemp("mosquitto")
    port = free_port()
    data = base / "data"  # the mosquitto-data volume
    data.mkdir()
    MosquittoBroker(stack_config(settings)).install()  # Debian's packages: present, or installed
    conf = base / "mosquitto.conf"
    conf.write_text(
        moved(
            (DOCKER / "mosquitto" / "mosquitto.conf").read_text(),
            [
                ("listener 8883\n", f"listener {port} 127.0.0.1\n"),  # not beyond this machine
                ("/mosquitto/tls/", f"{delivered.mosquitto}/"),
                ("/usr/lib/mosquitto_dynamic_security.so", str(DYNSEC_PLUGIN)),  # Debian's place
                ("/mosquitto/data/", f"{data}/"),
            ],
        )
        # Started as root, mosquitto becomes the `mosquitto` account before it opens its
        # listeners (the image's uid 1883, who owns its files there); here, this test's user.
        + f"user {getpass.getuser()}\n"
    )
    usernames = mqtt_principals.DEFAULT_USERNAMES
    logins = {
        p: MqttLogin(usernames[p], secrets.token_urlsafe(16)) for p in mqtt_principals.SERVICE_PRINCIPALS
    }
    passwords = {f"ZC_MQTT_{p.upper()}_PASSWORD": login.password for p, login in logins.items()}
    init = run_zerocarbon(
        {"ZC_STACK_HOME": str(base / "home"), "ZC_MQTT_ADMIN_PASSWORD": passwords["ZC_MQTT_ADMIN_PASSWORD"]},
        "mqtt", "init", "--dynsec-file", str(data / "dynamic-security.json"),
        "--owner", f"{os.getuid()}:{os.getgid()}",
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    log = base / "mosquitto.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _listening(proc.pid):
            assert proc.poll() is None, f"mosquitto exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        setup_env = {
            "ZC_STACK_HOME": str(base / "home"),
            "ZC_MQTT_HOST": "localhost",
            "ZC_MQTT_PORT": str(port),
            "ZC_TLS_CA_FILE": str(delivered.ca_file),
            **passwords,
        }
        setup = run_zerocarbon(setup_env, "mqtt", "setup")
        assert setup.returncode == 0, f"{setup.stdout}\n{setup.stderr}\n{log.read_text()[-3000:]}"
        client_settings = Settings(mqtt_host="localhost", mqtt_port=port, tls_ca_file=delivered.ca_file)
        yield Mosquitto(proc.pid, port, client_settings, logins, setup_env)
    finally:
        stop(proc)


def _listening(pid: int) -> set[tuple[str, int]]:
    """The (address, port) pairs the process ``pid`` listens on over TCP, read from /proc."""
    sockets = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            sockets.add(target.removeprefix("socket:[").removesuffix("]"))
    found = set()
    for table in ("tcp", "tcp6"):
        for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in sockets:  # 0A: LISTEN
                address, port = fields[1].split(":")
                raw = b"".join(bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, len(address), 8))
                found.add((str(ipaddress.ip_address(raw)), int(port, 16)))
    return found


def test_docker_mosquitto_listens_over_tls_only(mosquitto: Mosquitto) -> None:
    assert _listening(mosquitto.pid) == {("127.0.0.1", mosquitto.port)}
    # Plain MQTT on that port gets no CONNACK (0x20): the broker expects a TLS handshake.
    connect = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"
    with socket.create_connection(("127.0.0.1", mosquitto.port), timeout=5) as plain:
        plain.sendall(connect)
        try:
            answer = plain.recv(4)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert not answer.startswith(b"\x20"), answer


def test_docker_mosquitto_refuses_anonymous_clients(mosquitto: Mosquitto) -> None:
    client = Client(mosquitto.settings, None)
    try:
        assert client.connack is not None and client.connack.value == NOT_AUTHORIZED
    finally:
        client.close()


def test_the_bridge_login_subscribes_over_tls_and_publishes_nothing(mosquitto: Mosquitto) -> None:
    bridge = Client(mosquitto.settings, mosquitto.logins[mqtt_principals.BRIDGE])
    gateway = Client(mosquitto.settings, mosquitto.logins[mqtt_principals.GATEWAY])
    try:
        assert bridge.accepted and gateway.accepted
        assert not bridge.subscribe(DEVICE_FILTER).is_failure
        topic = device_topic("17300", "energy", "test-docker-meter")
        assert not gateway.publish(topic, b"{}").is_failure
        assert bridge.publish(topic, b"{}").value == NOT_AUTHORIZED
        # The local stack's sandbox is not granted to a deployment's gateway.
        assert gateway.publish(f"{mqtt_principals.SANDBOX_ROOT}/x", b"{}").value == NOT_AUTHORIZED
    finally:
        bridge.close()
        gateway.close()


def test_mqtt_setup_again_leaves_a_connected_service_alone(mosquitto: Mosquitto) -> None:
    """compose runs mqtt-setup at every `up`, while the bridge may be running: a password the
    broker already holds is not set again (which would disconnect the bridge)."""
    bridge = Client(mosquitto.settings, mosquitto.logins[mqtt_principals.BRIDGE])
    try:
        assert bridge.accepted
        again = run_zerocarbon(mosquitto.setup_env, "mqtt", "setup")
        assert again.returncode == 0, again.stderr
        time.sleep(1)
        assert bridge.disconnected_at is None
    finally:
        bridge.close()


def test_the_mosquitto_healthcheck_tells_a_serving_broker(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """The mosquitto service's healthcheck, run by Debian's mosquitto_sub: a TLS handshake
    checked against the CA, and an anonymous login refused, needs no password."""
    found = re.search(r'"CMD-SHELL", "(mosquitto_sub [^"]*)"', COMPOSE.read_text())
    assert found is not None, "the mosquitto service's healthcheck is no longer mosquitto_sub"
    command = found.group(1).replace("$$", "$")  # compose's escape of a literal $
    ca_file = mosquitto.settings.tls_ca_file
    # No options of this machine's user (mosquitto_sub reads $XDG_CONFIG_HOME/mosquitto_sub).
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    for port, healthy in ((mosquitto.port, True), (free_port(), False)):
        check = moved(command, [("-p 8883", f"-p {port}"), ("/mosquitto/tls/ca.crt", str(ca_file))])
        done = subprocess.run(["sh", "-c", check], env=env, capture_output=True, text=True, timeout=30)
        assert (done.returncode == 0) is healthy, (port, done.stdout, done.stderr)
