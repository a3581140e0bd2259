"""How many Kafka brokers, where each listens, and how many copies of each topic they keep.

The local stack runs one broker (``ZC_KAFKA_BROKERS=1``, the default) or a KRaft cluster of
several, each its own controller, on one host. Node ``n`` listens on each of the first
node's ports plus ``NODE_PORT_STEP * (n - 1)``: 9092, 9192, 9292 for three brokers' clients.
A cluster of three or more keeps three copies of every topic and acknowledges a write once
two have it (``min.insync.replicas=2``), so that one broker may die without a write being
lost or refused (docs/local-stack.md, "Three brokers").
"""

from __future__ import annotations

from collections.abc import Sequence

NODE_PORT_STEP = 100
MAX_BROKERS = 9  # with the step of 100, node 9's ports are the first's + 800
FULL_REPLICATION = 3


def node_port(first: int, node: int) -> int:
    """Node ``node``'s port (1-based) for the listener the first node has on ``first``."""
    if not 1 <= node <= MAX_BROKERS:
        raise ValueError(f"Kafka node {node} is outside 1..{MAX_BROKERS}")
    return first + NODE_PORT_STEP * (node - 1)


def default_replication(brokers: int) -> int:
    """Three copies when there are three brokers or more, else one per broker."""
    return min(brokers, FULL_REPLICATION)


def min_insync_replicas(replication: int) -> int:
    """The copies an ``acks=all`` write waits for: all but one, at most two. With one copy,
    one; with three, two, so that the loss of any one broker neither loses an acknowledged
    write nor stops writes."""
    return max(1, min(replication - 1, 2))


def bootstrap_servers(host: str, first_port: int, brokers: int) -> str:
    """Every local broker's client listener: a client started while one is down still finds
    the others."""
    return ",".join(f"{host}:{node_port(first_port, node)}" for node in range(1, brokers + 1))


def faust_broker_urls(bootstrap: str) -> str:
    """faust names several brokers as URLs separated by ``;``."""
    return ";".join(f"kafka://{server.strip()}" for server in _servers(bootstrap))


def _servers(bootstrap: str) -> Sequence[str]:
    servers = [s for s in bootstrap.split(",") if s.strip()]
    if not servers:
        raise ValueError("no Kafka bootstrap server given")
    return servers
