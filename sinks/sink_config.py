"""What `zerocarbon sink` needs to know, and nothing else: the CLI builds it from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from config.kafka_access import KafkaAccess
from config.prometheus_metrics import MetricsEndpoint
from schemas.mqtt_principals import MqttLogin
from sinks.influx_target import InfluxTarget


@dataclass(frozen=True, slots=True)
class SinkConfig:
    """The sink's configuration (docs/configuration.md names the settings behind it)."""

    influx: InfluxTarget
    kafka: KafkaAccess
    partitions: int  # of the topics it declares at start
    group: str
    status_dir: Path  # one status file per sink, read by `--status` and the operators' page
    spool_dir: Path
    batch_size: int
    flush_interval_seconds: float
    memory_limit_bytes: int
    gzip: bool
    request_timeout_seconds: float
    max_backoff_seconds: float
    mqtt_retained: bool
    mqtt_topic_root: str
    mqtt_host: str
    mqtt_port: int
    mqtt_login: MqttLogin | None = None  # the sink principal's (publishes under mqtt_topic_root)
    mqtt_ca_file: Path | None = None  # MQTT over TLS, trusting this CA
    metrics: MetricsEndpoint = field(default_factory=MetricsEndpoint)  # sinks/sink_metrics.py
    # Beyond it a spill is refused as on a full disk: the sink stops reading Kafka.
    spool_max_bytes: int | None = None
    # Mosquitto's limits per offline client (0: none), beside its $SYS figures in /metrics.
    mqtt_queue_limit_messages: int = 0
    mqtt_queue_limit_bytes: int = 0
