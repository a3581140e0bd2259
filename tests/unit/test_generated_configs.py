"""The broker configurations we generate say what the foundation issue requires."""

from pathlib import Path

from config.settings import Settings
from stack.kafka_broker import KafkaBroker
from stack.mosquitto_broker import MosquittoBroker
from stack.stack_config import StackConfig
from zerocarbon.component_configs import stack_config

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def _config(tmp_path: Path) -> StackConfig:
    stack, cache = tmp_path / "stack", tmp_path / "cache"
    return stack_config(Settings(stack_home=stack, cache_dir=cache, kafka_port=19092, mqtt_port=21883))


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {k: v for k, v in pairs}


def test_kafka_single_node_supports_transactions(tmp_path: Path) -> None:
    props = _properties(KafkaBroker(_config(tmp_path))._properties())
    assert props["process.roles"] == "broker,controller"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["offsets.topic.replication.factor"] == "1"


def test_kafka_listens_on_loopback_and_configured_port(tmp_path: Path) -> None:
    props = _properties(KafkaBroker(_config(tmp_path))._properties())
    assert props["listeners"].startswith("CLIENT://127.0.0.1:19092,")
    assert props["advertised.listeners"].startswith("CLIENT://127.0.0.1:19092,")
    assert props["log.dirs"] == str(tmp_path / "stack" / "kafka" / "data")


def test_kafka_data_dir_is_configurable(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    config = stack_config(Settings(stack_home=tmp_path, cache_dir=tmp_path, kafka_data_dir=elsewhere))
    assert _properties(KafkaBroker(config)._properties())["log.dirs"] == str(elsewhere)


def test_mosquitto_persists_sessions(tmp_path: Path) -> None:
    conf = MosquittoBroker(_config(tmp_path))._config().splitlines()
    assert "persistence true" in conf
    assert "listener 21883 127.0.0.1" in conf
    assert f"persistence_location {tmp_path / 'stack' / 'mosquitto' / 'data'}/" in conf


def test_docker_mosquitto_config_keeps_the_local_delivery_settings(tmp_path: Path) -> None:
    """Deployments must queue and persist exactly as the local stack the tests ran against."""
    local = MosquittoBroker(_config(tmp_path))._config().splitlines()
    docker = (DOCKER / "mosquitto" / "mosquitto.conf").read_text().splitlines()
    keys = ("persistence ", "autosave_interval", "max_queued", "max_inflight", "message_size_limit")
    wanted = [line for line in local if line.startswith(keys)]
    assert wanted and all(line in docker for line in wanted)


# What may differ between the local broker's generated properties and docker/'s: the
# addresses and paths of the container, and how the broker's password gets in (docker/ reads
# it from the environment through Kafka's env config provider; the local file holds it).
KAFKA_PLACE_KEYS = {
    "node.id",
    "listeners",
    "advertised.listeners",
    "controller.quorum.voters",
    "log.dirs",
    "listener.name.client.ssl.keystore.location",
    # Across containers, the brokers' own listeners speak TLS (on one host, the loopback).
    "listener.security.protocol.map",
}
KAFKA_DOCKER_ONLY = {
    "config.providers",
    "config.providers.env.class",
    "config.providers.env.param.allowlist.pattern",
    "listener.name.controller.ssl.keystore.type",
    "listener.name.controller.ssl.keystore.location",
    "listener.name.internal.ssl.keystore.type",
    "listener.name.internal.ssl.keystore.location",
    "ssl.truststore.type",
    "ssl.truststore.location",
}


def test_docker_kafka_config_keeps_the_local_settings(tmp_path: Path) -> None:
    """Deployments must secure, replicate and retain exactly as the local broker the tests ran
    against (the local stack of three brokers, as compose runs three); only addresses, paths,
    the sources of the password and of the node's id, and TLS between the nodes differ."""
    stack, cache = tmp_path / "stack", tmp_path / "cache"
    broker = KafkaBroker(stack_config(Settings(stack_home=stack, cache_dir=cache, kafka_brokers=3)))
    local = _properties(broker._properties())
    docker = _properties((DOCKER / "kafka" / "server.properties").read_text())
    password = broker.passwords()["broker"]
    docker_resolved = {k: v.replace("${env:ZC_KAFKA_BROKER_PASSWORD}", password) for k, v in docker.items()}
    assert set(docker) - set(local) == KAFKA_DOCKER_ONLY
    assert set(local) - set(docker) == set()
    differing = {k for k in local if local[k] != docker_resolved[k]}
    assert differing <= KAFKA_PLACE_KEYS, {k: (local[k], docker[k]) for k in differing - KAFKA_PLACE_KEYS}


def test_mosquitto_queues_what_the_settings_size_for_an_offline_bridge(tmp_path: Path) -> None:
    """The outage the bridge may ride through is sized by two settings (docs/local-stack.md)."""
    settings = Settings(
        stack_home=tmp_path / "stack", cache_dir=tmp_path / "cache",
        mqtt_max_queued_messages=8_000_000, mqtt_max_queued_bytes=2_600_000_000,
    )  # fmt: skip
    conf = MosquittoBroker(stack_config(settings))._config().splitlines()
    assert "max_queued_messages 8000000" in conf and "max_queued_bytes 2600000000" in conf
