"""Our service for a benchmark run: `zerocarbon bridge`, `worker` and `sink` as an operator
starts them, with the suite's own MQTT client id, consumer groups, buckets and registry.

Nothing of the service's own state is used: the bridge has a client id of its own (its
session is forgotten at the end), the worker runs as ``BENCH_WORKER_ID`` (its group starts
at the end of every topic it reads), the sink has a group of its own started at the end of
zc.indicators, writes to the run's own buckets (created, with a token of the run's own that
may write only them, by ``prepare_sink_target``) and spools to a folder of its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench_topics import BENCH_WORKER_ID, start_group_at_end, worker_topics

from bridge.mqtt_sessions import forget_session
from config.settings import Settings
from schemas.catalogue import INDICATOR_TOPIC
from schemas.mqtt_principals import BRIDGE
from stack import control
from stack.influx_provisioning import InfluxProvisioning, provision, revoke
from zerocarbon.component_configs import influx_setup_config, mqtt_ca_file, mqtt_login, stack_config
from zerocarbon.processes import start_service, stop_child


def start_worker_group_at_end(settings: Settings) -> None:
    """The bench worker's next run reads only what is written from now on."""
    asyncio.run(start_group_at_end(settings, BENCH_WORKER_ID, worker_topics(settings)))


def start_worker(
    settings: Settings,
    log: Path,
    reference_dir: Path,
    from_end: bool = True,
    time_zone: str | None = None,
    settings_env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`zerocarbon worker` as ``BENCH_WORKER_ID``, from the current end of its topics (or, with
    ``from_end`` False, from where ``start_worker_group_at_end`` left its group), cutting its days
    in ``time_zone`` (None: the settings'), with ``settings_env`` (ZC_ settings) beside."""
    if from_end:
        start_worker_group_at_end(settings)
    env = {**(settings_env or {}), "ZC_WORKER_ID": BENCH_WORKER_ID, "ZC_REFERENCE_DIR": str(reference_dir)}
    if time_zone is not None:
        env["ZC_TIME_ZONE"] = time_zone
    return start_service(["worker"], log, env, timeout=180)


def start_bridge(log: Path, client_id: str) -> subprocess.Popen[bytes]:
    return start_service(["bridge", "--client-id", client_id], log)


def forget_bridge(settings: Settings, client_id: str) -> None:
    """Drop a throw-away bridge's persistent session (it would queue every later message)."""
    bridge = mqtt_login(settings, BRIDGE)
    forget_session(settings.mqtt_host, settings.mqtt_port, client_id, bridge, ca_file=mqtt_ca_file(settings))


@dataclass(frozen=True)
class SinkTarget:
    """Where a bench sink writes: a group and buckets of the run's own."""

    group: str
    bucket: str
    minute_bucket: str
    spool: Path
    tokens: Path  # the run's scoped tokens (its sink's, its readers')


def influx_setup(settings: Settings, bucket: str, minute_bucket: str, tokens: Path) -> InfluxProvisioning:
    """What `zerocarbon influx setup` would make for these buckets, as a scope of their own:
    the service's tokens stay as they are (``revoke`` removes this scope's when the run ends)."""
    run_settings = settings.model_copy(
        update={"influx_bucket": bucket, "influx_minute_bucket": minute_bucket, "influx_tokens_dir": tokens}
    )
    return dataclasses.replace(influx_setup_config(run_settings), scope=f"bench {bucket}")


def prepare_sink_target(settings: Settings, target: SinkTarget) -> InfluxProvisioning:
    """Create ``target``'s buckets and its tokens (the operator's work, done by the suite)."""
    setup = influx_setup(settings, target.bucket, target.minute_bucket, target.tokens)
    provision(setup)
    return setup


def forget_sink_target(setup: InfluxProvisioning) -> None:
    """Revoke the run's tokens (the suite deletes its buckets)."""
    revoke(setup)


def start_sink(
    settings: Settings, log: Path, target: SinkTarget, settings_env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`zerocarbon sink` from the current end of zc.indicators into ``target``'s buckets, with
    the token ``prepare_sink_target`` made for them (and ``settings_env`` beside)."""
    asyncio.run(start_group_at_end(settings, target.group, [INDICATOR_TOPIC]))
    env = {
        **(settings_env or {}),
        "ZC_SINK_GROUP": target.group,
        "ZC_INFLUX_BUCKET": target.bucket,
        "ZC_INFLUX_MINUTE_BUCKET": target.minute_bucket,
        "ZC_INFLUX_TOKENS_DIR": str(target.tokens),
        "ZC_SINK_SPOOL_DIR": str(target.spool),
    }
    return start_service(["sink"], log, env)


def stack_pids(settings: Settings) -> dict[str, int]:
    """The pids of the local Kafka, Mosquitto and InfluxDB."""
    services = control.services(stack_config(settings))
    return {s.name: pid for s in services if (pid := s.process.pid()) is not None}


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        stop_child(proc)
