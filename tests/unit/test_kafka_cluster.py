"""A local KRaft cluster of three (ZC_KAFKA_BROKERS=3): each node's ports, voters and copies."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from config.kafka_cluster import (
    bootstrap_servers,
    default_replication,
    faust_broker_urls,
    min_insync_replicas,
    node_port,
)
from config.settings import Settings
from stack import control
from stack.errors import StackError
from stack.kafka_broker import KafkaBroker, cluster_file
from stack.service import LocalService
from zerocarbon.component_configs import stack_config


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {k: v for k, v in pairs}


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    ports = {"kafka_port": 19092, "kafka_controller_port": 9093, "kafka_internal_port": 9094}
    return Settings(stack_home=tmp_path / "stack", cache_dir=tmp_path / "cache", **ports, **overrides)  # type: ignore[arg-type]


def test_each_node_listens_on_the_first_nodes_ports_plus_a_hundred_per_node(tmp_path: Path) -> None:
    config = stack_config(_settings(tmp_path, kafka_brokers=3))
    props = _properties(KafkaBroker(config, node=2)._properties())
    assert props["node.id"] == "2"
    assert (
        props["listeners"] == "CLIENT://127.0.0.1:19192,CONTROLLER://127.0.0.1:9193,INTERNAL://127.0.0.1:9194"
    )
    assert props["advertised.listeners"] == "CLIENT://127.0.0.1:19192,INTERNAL://127.0.0.1:9194"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293"
    assert props["log.dirs"] == str(tmp_path / "stack" / "kafka-2" / "data")


def test_three_brokers_keep_three_copies_and_acknowledge_at_two(tmp_path: Path) -> None:
    config = stack_config(_settings(tmp_path, kafka_brokers=3))
    props = _properties(KafkaBroker(config, node=3)._properties())
    for key in ("offsets.topic", "transaction.state.log", "share.coordinator.state.topic"):
        assert props[f"{key}.replication.factor"] == "3"
    assert props["transaction.state.log.min.isr"] == "2"
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"


def test_one_broker_is_the_single_node_it_always_was(tmp_path: Path) -> None:
    config = stack_config(_settings(tmp_path))
    [broker] = [s for s in control.services(config) if isinstance(s, KafkaBroker)]
    props = _properties(broker._properties())
    assert broker.name == "kafka" and props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["min.insync.replicas"] == "1" and props["default.replication.factor"] == "1"


def test_the_stack_starts_every_node_and_clients_know_them_all(tmp_path: Path) -> None:
    settings = _settings(tmp_path, kafka_brokers=3)
    names = [s.name for s in control.services(stack_config(settings))]
    assert names == ["mosquitto", "influxdb", "kafka", "kafka-2", "kafka-3"]
    assert settings.kafka_bootstrap == "127.0.0.1:19092,127.0.0.1:19192,127.0.0.1:19292"
    assert settings.kafka_replication == 3
    assert faust_broker_urls(settings.kafka_bootstrap) == (
        "kafka://127.0.0.1:19092;kafka://127.0.0.1:19192;kafka://127.0.0.1:19292"
    )


def test_explicit_servers_and_replication_win(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, kafka_bootstrap_servers="kafka-1:9092,kafka-2:9092", kafka_replication_factor=2
    )
    assert settings.kafka_bootstrap == "kafka-1:9092,kafka-2:9092"
    assert settings.kafka_replication == 2


def test_copies_and_acknowledgements_by_cluster_size() -> None:
    assert [default_replication(n) for n in (1, 2, 3, 5)] == [1, 2, 3, 3]
    assert [min_insync_replicas(r) for r in (1, 2, 3, 4)] == [1, 1, 2, 2]
    assert bootstrap_servers("h", 9092, 2) == "h:9092,h:9192"
    assert node_port(9093, 3) == 9293
    with pytest.raises(ValueError, match="outside"):
        node_port(9092, 10)


def test_a_cluster_size_beyond_the_port_plan_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="kafka_brokers"):
        _settings(tmp_path, kafka_brokers=10)


def test_every_node_shares_one_cluster_id(tmp_path: Path) -> None:
    config = stack_config(_settings(tmp_path, kafka_brokers=3))
    ids = {KafkaBroker(config, node)._cluster_id() for node in (1, 2, 3)}
    assert len(ids) == 1
    assert "brokers=3" in cluster_file(config.home).read_text()


def test_a_changed_number_of_brokers_is_refused_before_anything_starts(tmp_path: Path) -> None:
    KafkaBroker(stack_config(_settings(tmp_path, kafka_brokers=3)))._cluster_id()
    with pytest.raises(StackError, match=r"cluster of 3 broker.*ZC_KAFKA_BROKERS is 1"):
        KafkaBroker(stack_config(_settings(tmp_path)))._cluster_id()


def test_a_stack_made_before_clusters_is_one_broker_with_its_own_id(tmp_path: Path) -> None:
    config = stack_config(_settings(tmp_path))
    meta = config.home / "kafka" / "data" / "meta.properties"
    meta.parent.mkdir(parents=True)
    meta.write_text("#\nnode.id=1\ncluster.id=AbCdEfGhIjKlMnOpQrStUv\nversion=1\n")
    assert KafkaBroker(config)._cluster_id() == "AbCdEfGhIjKlMnOpQrStUv"
    with pytest.raises(StackError, match="cluster of 1 broker"):
        KafkaBroker(stack_config(_settings(tmp_path, kafka_brokers=3)))._cluster_id()


def test_a_refused_cluster_starts_nothing_of_the_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []
    monkeypatch.setattr(LocalService, "start", lambda service: started.append(service.name))
    KafkaBroker(stack_config(_settings(tmp_path, kafka_brokers=3)))._cluster_id()
    with pytest.raises(StackError, match="ZC_KAFKA_BROKERS is 1"):
        control.up(stack_config(_settings(tmp_path)))
    assert started == []
