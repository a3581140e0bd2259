"""Prometheus metrics of a process, read from what it already counts, when scraped.

Each process keeps its counters in plain Python on its hot paths and writes them to its status
file every second (config/status_files.py); a scrape turns one snapshot of the same figures
into Prometheus' text format, so metrics cost nothing between scrapes and can never disagree
with the status file. What a process exposes is declared as data (``Metric``): the name
(units in the name, ``_total`` for counters), its help, and the snapshot's key; a mapping under
that key gives one series per key, under one label (producers, reasons, families: bounded by
identity where they are counted). docs/metrics.md lists them all.

The server is aiohttp on the process's own event loop (no thread reading counters another
thread writes), bound to loopback unless configured otherwise, and then only for a client
showing the metrics token (Prometheus' ``authorization`` in its scrape configuration).
Beside the declared metrics: prometheus-client's process collector
(``process_cpu_seconds_total``, ``process_resident_memory_bytes``, ...).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.core import Metric as Family
from prometheus_client.registry import Collector

from config.metrics_targets import registered_target
from config.web_access import bearer_token, require_token_beyond_loopback, same_secret

log = logging.getLogger(__name__)

Snapshot = Callable[[], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric read from a snapshot's ``key``; ``label`` names the keys of a mapping there."""

    name: str
    kind: Literal["counter", "gauge"]
    help: str
    key: str
    label: str | None = None

    def __post_init__(self) -> None:
        if (self.kind == "counter") != self.name.endswith("_total"):
            raise ValueError(f"{self.name}: a counter's name ends in _total, and only a counter's")

    def family(self, value: Any) -> Family | None:
        """This metric's samples for ``value`` (None: the snapshot has nothing for it now)."""
        if value is None:
            return None
        labels = [self.label] if self.label else None
        family: Family
        if self.kind == "counter":
            family = CounterMetricFamily(self.name.removesuffix("_total"), self.help, labels=labels)
        else:
            family = GaugeMetricFamily(self.name, self.help, labels=labels)
        if isinstance(value, Mapping):
            if self.label is None:
                raise ValueError(f"{self.name}: {self.key} holds a mapping, and the metric names no label")
            for key, number in sorted(value.items()):
                family.add_metric([str(key)], float(number))
        else:
            family.add_metric([], float(value))
        return family


class SnapshotCollector(Collector):
    """``metrics`` read from one call of ``snapshot`` per scrape."""

    def __init__(self, metrics: Sequence[Metric], snapshot: Snapshot) -> None:
        self.metrics = metrics
        self.snapshot = snapshot

    def collect(self) -> Iterator[Family]:
        values = self.snapshot()
        for metric in self.metrics:
            family = metric.family(values.get(metric.key))
            if family is not None:
                yield family


def metrics_registry(metrics: Sequence[Metric], snapshot: Snapshot) -> CollectorRegistry:
    """A registry of ``metrics`` and of the process's CPU, memory and file descriptors."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(metrics, snapshot))
    ProcessCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus' text format."""
    return generate_latest(registry)


@dataclass(frozen=True, slots=True)
class MetricsEndpoint:
    """Where a process serves ``/metrics``; port 0 takes a free one (said in the status file).
    Beyond loopback, only to whoever shows ``token`` (``Authorization: Bearer``)."""

    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = field(default=None, repr=False)
    # Where the process registers itself for Prometheus (config/metrics_targets.py; None: it
    # does not), and the role its target is labelled with.
    targets: Path | None = None
    role: str = "process"

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"metrics port {self.port} is not a TCP port (0 takes a free one)")

    def require_access(self) -> None:
        """WebAccessRefused beyond loopback without a token, naming the setting: a command
        checks it before it reaches for any broker."""
        require_token_beyond_loopback(self.host, self.token, page="/metrics", setting="ZC_METRICS_TOKEN")


ReadinessChecks = Callable[[], Mapping[str, bool]]
"""What a process must be to serve: each check by name, True when it holds (``/ready``)."""


def readiness(checks: Mapping[str, bool]) -> tuple[int, dict[str, Any]]:
    """``/ready``'s status code and body: 200 when every check holds, else 503 naming those
    that do not."""
    failing = sorted(name for name, ok in checks.items() if not ok)
    body = {"status": "fail" if failing else "pass", "checks": dict(checks), "failing": failing}
    return (503 if failing else 200), body


@asynccontextmanager
async def metrics_server(
    registry: CollectorRegistry, endpoint: MetricsEndpoint, ready: ReadinessChecks | None = None
) -> AsyncIterator[int]:
    """Serve ``registry`` at ``http://host:port/metrics`` while the block runs; yields the port.
    A port already taken raises OSError, naming it: a process that cannot be watched says so at
    start rather than running unseen. Beyond loopback without a token: WebAccessRefused, as
    every page of the service (config/web_access.py)."""
    endpoint.require_access()
    token = endpoint.token

    async def metrics(request: web.Request) -> web.Response:
        if token is not None and not same_secret(bearer_token(request.headers.get("Authorization")), token):
            return web.Response(
                status=401,
                text="send the metrics token: Authorization: Bearer <ZC_METRICS_TOKEN>\n",
                headers={"WWW-Authenticate": 'Bearer realm="zerocarbon-metrics"'},
            )
        return web.Response(body=exposition(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(_request: web.Request) -> web.Response:  # serving: alive
        return web.json_response({"status": "pass"})

    async def ready_page(_request: web.Request) -> web.Response:
        status, body = readiness(ready() if ready is not None else {})
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    # Open as the worker's /health: booleans only, what a supervisor or an orchestrator probes.
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready_page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, endpoint.host, endpoint.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        where = f"{endpoint.host}:{endpoint.port}"
        raise OSError(exc.errno, f"metrics cannot listen on {where}: {exc.strerror}") from exc
    port = int(runner.addresses[0][1])  # the port bound, when 0 asked for a free one
    try:
        with registered_target(endpoint.targets, endpoint.role, endpoint.host, port):
            yield port
    finally:
        await runner.cleanup()
