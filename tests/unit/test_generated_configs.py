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
