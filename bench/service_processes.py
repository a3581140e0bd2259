"""Our service for a benchmark run: `zerocarbon bridge`, `worker` and `sink` as an operator
starts them, with the suite's own MQTT client id, consumer groups, buckets and registry.

Nothing of the service's own state is used: the bridge has a client id of its own (its
session is forgotten at the end), the worker runs as ``BENCH_WORKER_ID`` (its group starts
at the end of every topic it reads), the sink has a group of its own started at the end of
zc.indicators, writes to the run's own buckets and spools to a folder of its own.
"""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench_topics import BENCH_WORKER_ID, start_group_at_end, worker_topics

from bridge.mqtt_sessions import forget_session
from config.settings import Settings
from schemas.catalogue import INDICATOR_TOPIC
from stack import control
from zerocarbon.demo import BRIDGE_READY, SINK_READY, WORKER_READY
from zerocarbon.processes import spawn_command, stop_child, wait_for_log


def _start(
    args: list[str], log: Path, ready: str, timeout: float, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    offset = log.stat().st_size if log.exists() else 0
    proc = spawn_command(args, log, env)
    try:
        wait_for_log(proc, log, ready, timeout=timeout, offset=offset)
    except BaseException:
        stop_child(proc)
        raise
    return proc


def start_worker_group_at_end(settings: Settings) -> None:
    """The bench worker's next run reads only what is written from now on."""
    asyncio.run(start_group_at_end(settings, BENCH_WORKER_ID, worker_topics(settings)))


def start_worker(
    settings: Settings, log: Path, reference_dir: Path, from_end: bool = True
) -> subprocess.Popen[bytes]:
    """`zerocarbon worker` as ``BENCH_WORKER_ID``, from the current end of its topics (or, with
    ``from_end`` False, from where ``start_worker_group_at_end`` left its group)."""
    if from_end:
        start_worker_group_at_end(settings)
    env = {"ZC_WORKER_ID": BENCH_WORKER_ID, "ZC_REFERENCE_DIR": str(reference_dir)}
    return _start(["worker"], log, WORKER_READY, 180, env)


def start_bridge(log: Path, client_id: str) -> subprocess.Popen[bytes]:
    return _start(["bridge", "--client-id", client_id], log, BRIDGE_READY, 60, {})


def forget_bridge(settings: Settings, client_id: str) -> None:
    """Drop a throw-away bridge's persistent session (it would queue every later message)."""
    forget_session(settings.mqtt_host, settings.mqtt_port, client_id)


@dataclass(frozen=True)
class SinkTarget:
    """Where a bench sink writes: a group and buckets of the run's own."""

    group: str
    bucket: str
    minute_bucket: str
    spool: Path


def start_sink(settings: Settings, log: Path, target: SinkTarget) -> subprocess.Popen[bytes]:
    """`zerocarbon sink` from the current end of zc.indicators into ``target``'s buckets."""
    asyncio.run(start_group_at_end(settings, target.group, [INDICATOR_TOPIC]))
    env = {
        "ZC_SINK_GROUP": target.group,
        "ZC_INFLUX_BUCKET": target.bucket,
        "ZC_INFLUX_MINUTE_BUCKET": target.minute_bucket,
        "ZC_SINK_SPOOL_DIR": str(target.spool),
    }
    return _start(["sink"], log, SINK_READY, 60, env)


def stack_pids(settings: Settings) -> dict[str, int]:
    """The pids of the local Kafka, Mosquitto and InfluxDB."""
    return {s.name: pid for s in control.services(settings) if (pid := s.process.pid()) is not None}


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        stop_child(proc)
