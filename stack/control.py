"""`zerocarbon stack up | down | status | install`: the local services (Mosquitto, InfluxDB, Kafka,
and Prometheus when asked for) as one unit."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from stack.influxdb_server import InfluxDBServer
from stack.kafka_broker import KafkaBroker
from stack.kcat_client import KcatClient
from stack.mosquitto_broker import MosquittoBroker
from stack.prometheus_server import PrometheusServer
from stack.service import LocalService
from stack.stack_config import StackConfig


def services(config: StackConfig) -> list[LocalService]:
    """The stack's services in start order (stopped in reverse)."""
    brokers = [KafkaBroker(config, node) for node in range(1, config.kafka_brokers + 1)]
    stack: list[LocalService] = [MosquittoBroker(config), InfluxDBServer(config), *brokers]
    return [*stack, PrometheusServer(config)] if config.prometheus else stack


@contextlib.contextmanager
def one_at_a_time(home: Path) -> Iterator[None]:
    """An exclusive lock on the instance's home while it starts or stops: two `stack up` at
    once (a test run and an operator's command) each saw influxd stopped and each started one;
    the second died on the first's bolt file ("unable to open boltdb: timeout")."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / "control.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def up(config: StackConfig) -> list[dict[str, Any]]:
    """Install what is missing, start what is not running, wait until every one serves."""
    with one_at_a_time(config.home):
        _up(services(config))
    return status(config)


def _up(stack: list[LocalService]) -> None:
    for broker in (service for service in stack if isinstance(service, KafkaBroker)):
        broker.check_cluster()  # a refused cluster starts nothing, not even Mosquitto
    for service in stack:
        if service.start():
            print(f"[stack] started {service.name} (log: {service.dirs.log_file})", flush=True)
        else:
            print(f"[stack] {service.name} already running", flush=True)
    for service in stack:
        t0 = time.monotonic()
        service.wait_ready()
        print(
            f"[stack] {service.name} ready at {service.endpoint} ({time.monotonic() - t0:.1f}s)", flush=True
        )


def install(config: StackConfig) -> None:
    """Install each service, and kcat with a librdkafka that can log in (stack/kcat_client.py)."""
    for service in services(config):
        service.install()
        print(f"[stack] {service.name} installed", flush=True)
    kcat = KcatClient(config.cache_dir)
    kcat.install()
    print(f"[stack] kcat installed: {kcat.wrapper}", flush=True)


def down(config: StackConfig) -> list[str]:
    """Stop every running service cleanly; return the names of those stopped."""
    with one_at_a_time(config.home):
        stopped: list[str] = []
        stack = list(reversed(services(config)))
        brokers = [service for service in stack if isinstance(service, KafkaBroker)]
        for service in stack:
            if isinstance(service, KafkaBroker):
                if service is brokers[0]:
                    stopped += _stop_together(brokers)
            elif service.stop():
                stopped.append(service.name)
        return stopped


def _stop_together(brokers: list[KafkaBroker]) -> list[str]:
    """A cluster's nodes stopped one after the other: the last ones lose their controllers'
    quorum and wait for it in their controlled shutdown. Stopped together, each sees the
    others leave."""
    with ThreadPoolExecutor(max_workers=len(brokers)) as pool:
        results = list(pool.map(lambda broker: broker.stop(), brokers))
    return [broker.name for broker, stopped in zip(brokers, results, strict=True) if stopped]


def status(config: StackConfig) -> list[dict[str, Any]]:
    """Each service's health, version, endpoint and log file, as plain data."""
    return [dataclasses.asdict(service.health()) for service in services(config)]
