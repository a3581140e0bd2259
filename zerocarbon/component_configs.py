"""Each component's own configuration, built from the settings: the one place that maps them.

Components never read the settings object; they take the small typed config they need, so a
component's tests and benchmarks build that config directly and its dependencies stay visible.
"""

from __future__ import annotations

from config.settings import Settings
from schemas.asyncapi import Servers
from streams.worker_config import WorkerConfig


def worker_config(settings: Settings) -> WorkerConfig:
    """The faust worker's: its group, brokers, web page and the indicator engine's timings."""
    return WorkerConfig(
        worker_id=settings.worker_id,
        kafka_bootstrap=settings.kafka_bootstrap,
        partitions=settings.kafka_partitions,
        data_dir=settings.stack_home / "worker" / "faust-data",
        web_host=settings.bind_host,
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
