"""Each component's own configuration, built from the settings: the one place that maps them.

Components never read the settings object; they take the small typed config they need, so a
component's tests and benchmarks build that config directly and its dependencies stay visible.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from config.settings import Settings
from operators_view.view_config import ViewConfig
from reference.loader import DEFAULT_DIR
from schemas.asyncapi import Servers
from sensors.device_side_config import DeviceSideConfig
from sinks.influx_target import InfluxTarget
from sinks.sink_config import SinkConfig
from stack.stack_config import StackConfig
from streams.worker_config import WorkerConfig

if TYPE_CHECKING:  # the bridge's module brings the MQTT and Kafka clients: imported when used
    from bridge.mqtt_to_kafka import BridgeConfig


def reference_dir(settings: Settings) -> Path:
    """The reference data folder: the configured one, else the shipped one."""
    return settings.reference_dir or DEFAULT_DIR


def worker_url(settings: Settings) -> str:
    """Where the worker's page (``/counters``, ``/health``) is reached."""
    return f"http://{settings.worker_web_host}:{settings.worker_web_port}"


def worker_config(settings: Settings) -> WorkerConfig:
    """The faust worker's: its group, brokers, web page and the indicator engine's timings."""
    return WorkerConfig(
        worker_id=settings.worker_id,
        kafka_bootstrap=settings.kafka_bootstrap,
        partitions=settings.kafka_partitions,
        data_dir=settings.stack_home / "worker" / "faust-data",
        web_host=settings.worker_web_host,
        web_port=settings.worker_web_port,
        session_timeout_seconds=settings.worker_session_timeout_seconds,
        instance_id=settings.worker_instance_id,
        dedup_horizon_seconds=settings.dedup_horizon_seconds,
        grace_seconds=settings.indicator_grace_seconds,
        checkpoint_seconds=settings.indicator_checkpoint_seconds,
        reference_dir=settings.reference_dir,
    )


def contract_servers(settings: Settings) -> Servers:
    """Where the exported AsyncAPI document says the channels are."""
    return Servers(
        kafka_bootstrap=settings.kafka_bootstrap,
        mqtt_address=f"{settings.mqtt_host}:{settings.mqtt_port}",
        partitions=settings.kafka_partitions,
    )


def stack_config(settings: Settings) -> StackConfig:
    """The embedded stack's: where it installs and runs, its ports, versions and InfluxDB setup."""
    return StackConfig(
        cache_dir=settings.cache_dir,
        home=settings.stack_home,
        bind_host=settings.bind_host,
        kafka_version=settings.kafka_version,
        kafka_port=settings.kafka_port,
        kafka_controller_port=settings.kafka_controller_port,
        kafka_heap=settings.kafka_heap,
        kafka_partitions=settings.kafka_partitions,
        mqtt_port=settings.mqtt_port,
        influx_version=settings.influx_version,
        influx_port=settings.influx_port,
        influx_org=settings.influx_org,
        influx_bucket=settings.influx_bucket,
        influx_username=settings.influx_username,
        influx_password=settings.influx_password.get_secret_value(),
        influx_token=settings.influx_token.get_secret_value(),
        kafka_data_dir=settings.kafka_data_dir,
        mosquitto_data_dir=settings.mosquitto_data_dir,
        influx_data_dir=settings.influx_data_dir,
    )


def influx_target(settings: Settings) -> InfluxTarget:
    """Where the indicators are written and read back."""
    return InfluxTarget(
        url=settings.influx_url,
        token=settings.influx_token.get_secret_value(),
        org=settings.influx_org,
        bucket=settings.influx_bucket,
        minute_bucket=settings.influx_minute_bucket,
        retention_days=settings.influx_retention_days,
        minute_retention_days=settings.influx_minute_retention_days,
    )


def sink_status_dir(settings: Settings) -> Path:
    """Where each sink rewrites its status file (one per sink name)."""
    return settings.stack_home / "sink"


def bridge_status_dir(settings: Settings) -> Path:
    """Where each bridge rewrites its status file (one per client id)."""
    return settings.stack_home / "bridge"


def sink_config(settings: Settings) -> SinkConfig:
    """The sink's: InfluxDB, its Kafka group, its buffer, its write requests and retained MQTT."""
    status_dir = sink_status_dir(settings)
    return SinkConfig(
        influx=influx_target(settings),
        kafka_bootstrap=settings.kafka_bootstrap,
        partitions=settings.kafka_partitions,
        group=settings.sink_group,
        status_dir=status_dir,
        spool_dir=settings.sink_spool_dir or status_dir / "spool",
        batch_size=settings.sink_batch_size,
        flush_interval_seconds=settings.sink_flush_interval_seconds,
        memory_limit_bytes=settings.sink_memory_limit_bytes,
        gzip=settings.sink_gzip,
        request_timeout_seconds=settings.sink_request_timeout_seconds,
        max_backoff_seconds=settings.sink_max_backoff_seconds,
        mqtt_retained=settings.sink_mqtt_retained,
        mqtt_topic_root=settings.sink_mqtt_topic_root,
        mqtt_host=settings.mqtt_host,
        mqtt_port=settings.mqtt_port,
    )


def view_config(settings: Settings) -> ViewConfig:
    """The operators' page's: where it listens and where each of its sources is."""
    return ViewConfig(
        host=settings.view_host,
        port=settings.view_port,
        refresh_seconds=settings.view_refresh_seconds,
        dead_letters_kept=settings.view_dead_letters_kept,
        influx=influx_target(settings),
        kafka_bootstrap=settings.kafka_bootstrap,
        worker_url=worker_url(settings),
        worker_group=settings.worker_id,
        sink_group=settings.sink_group,
        sink_status_dir=sink_status_dir(settings),
        bridge_status_dir=bridge_status_dir(settings),
        reference_dir=reference_dir(settings),
    )


def bridge_config(settings: Settings, client_id: str) -> BridgeConfig:
    """The bridge's, for one MQTT client id (its persistent session and its status file)."""
    from bridge.mqtt_to_kafka import BridgeConfig

    return BridgeConfig(
        mqtt_host=settings.mqtt_host,
        mqtt_port=settings.mqtt_port,
        kafka_bootstrap=settings.kafka_bootstrap,
        client_id=client_id,
        status_file=bridge_status_dir(settings) / f"{client_id}.status.json",
        shared_group=settings.bridge_shared_group,
        mqtt_version=settings.bridge_mqtt_version,
        receive_maximum=settings.bridge_receive_maximum,
        linger_seconds=settings.bridge_linger_ms / 1000,
    )


def device_side_config(settings: Settings) -> DeviceSideConfig:
    """`zerocarbon simulate` and `replay`'s: the brokers they send to and the reference data."""
    return DeviceSideConfig(
        mqtt_host=settings.mqtt_host,
        mqtt_port=settings.mqtt_port,
        kafka_bootstrap=settings.kafka_bootstrap,
        reference_dir=reference_dir(settings),
    )
