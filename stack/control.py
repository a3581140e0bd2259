"""`zerocarbon stack up | down | status | install`: the three local services as one unit."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from stack.influxdb_server import InfluxDBServer
from stack.kafka_broker import KafkaBroker
from stack.kcat_client import KcatClient
from stack.mosquitto_broker import MosquittoBroker
from stack.service import LocalService
from stack.stack_config import StackConfig


def services(config: StackConfig) -> list[LocalService]:
    """The stack's services in start order (stopped in reverse)."""
    return [MosquittoBroker(config), InfluxDBServer(config), KafkaBroker(config)]


def up(config: StackConfig) -> list[dict[str, Any]]:
    """Install what is missing, start what is not running, wait until every one serves."""
    stack = services(config)
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
    return status(config)


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
    stopped = []
    for service in reversed(services(config)):
        if service.stop():
            stopped.append(service.name)
    return stopped


def status(config: StackConfig) -> list[dict[str, Any]]:
    """Each service's health, version, endpoint and log file, as plain data."""
    return [dataclasses.asdict(service.health()) for service in services(config)]
