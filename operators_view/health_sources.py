"""The platform's health as the running processes report it: the worker's `/counters`, and the
status files the sink and the bridges rewrite every second (config/status_files.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bridge.status import read_statuses
from sinks.indicator_sink import read_sink_statuses


def worker_counters_url(worker_url: str) -> str:
    return f"{worker_url}/counters"


async def read_worker_counters(
    session: aiohttp.ClientSession, url: str, token: str | None = None
) -> dict[str, Any]:
    """The worker's cumulative validation counters, showing the worker's ``token`` when it has
    one; raises when the worker does not answer (or refuses)."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else None
    async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=3)) as answer:
        if answer.status == 401:
            raise aiohttp.ClientResponseError(
                answer.request_info, answer.history, status=401,
                message="the worker wants its token: give the view the worker's ZC_WORKER_WEB_TOKEN",
            )  # fmt: skip
        answer.raise_for_status()
        counters: dict[str, Any] = await answer.json()
        return counters


@dataclass(frozen=True)
class SinkState:
    """The sink's buffer and connections, from its status file."""

    name: str
    running: bool  # the status file is fresh
    age_seconds: float
    kafka_ready: bool
    influx_ok: bool
    points_written: int
    points_written_per_second: float | None
    buffered_memory_points: int
    buffered_memory_bytes: int
    memory_limit_bytes: int
    buffered_disk_points: int
    buffered_disk_bytes: int
    disk_segments: int
    spills: int
    rejected_dead_lettered: int
    write_latency_p99_seconds: float | None
    last_error: str | None


def sink_state(status: dict[str, Any], previous: dict[str, Any] | None) -> SinkState:
    """One sink's state; the write rate between the previous status file of the same process
    and this one (each carries the time it was written)."""
    written = int(status.get("points_written", 0))
    rate = None
    if previous is not None and previous.get("pid") == status.get("pid"):
        interval = float(status.get("updated_at", 0)) - float(previous.get("updated_at", 0))
        if interval > 0:
            rate = max(written - int(previous.get("points_written", 0)), 0) / interval
        elif previous.get("points_written_per_second") is not None:
            rate = float(previous["points_written_per_second"])  # the same file read twice
    latency = status.get("write_latency_seconds") or {}
    return SinkState(
        name=str(status.get("name", "sink")),
        running=bool(status.get("fresh")),
        age_seconds=float(status.get("age_seconds", 0.0)),
        kafka_ready=bool(status.get("kafka_ready")),
        influx_ok=bool(status.get("influx_ok")),
        points_written=written,
        points_written_per_second=rate,
        buffered_memory_points=int(status.get("buffered_memory_points", 0)),
        buffered_memory_bytes=int(status.get("buffered_memory_bytes", 0)),
        memory_limit_bytes=int(status.get("memory_limit_bytes", 0)),
        buffered_disk_points=int(status.get("buffered_disk_points", 0)),
        buffered_disk_bytes=int(status.get("buffered_disk_bytes", 0)),
        disk_segments=int(status.get("disk_segments", 0)),
        spills=int(status.get("spills", 0)),
        rejected_dead_lettered=int(status.get("rejected_dead_lettered", 0)),
        write_latency_p99_seconds=latency.get("p99"),
        last_error=status.get("last_error"),
    )


def read_sinks(status_dir: Path) -> list[dict[str, Any]]:
    """Every sink status file, running ones first, then the one that stopped last (a stale file
    is a sink that stopped)."""
    return sorted(read_sink_statuses(status_dir), key=lambda s: (not s["fresh"], float(s["age_seconds"])))


@dataclass(frozen=True)
class BridgeState:
    client_id: str
    ready: bool
    mqtt_connected: bool
    kafka_ready: bool
    received: int
    dead_lettered: int
    in_flight: int


def read_bridges(status_dir: Path) -> list[BridgeState]:
    """The bridges whose status file is fresh (files of bridges that stopped are left out)."""
    return [
        BridgeState(
            client_id=str(status.get("client_id", "?")),
            ready=bool(status["ready"]),
            mqtt_connected=bool(status.get("mqtt_connected")),
            kafka_ready=bool(status.get("kafka_ready")),
            received=sum(int(v) for v in (status.get("received") or {}).values()),
            dead_lettered=int(status.get("dead_lettered", 0)),
            in_flight=int(status.get("in_flight", 0)),
        )
        for status in read_statuses(status_dir)
        if status["fresh"]
    ]
