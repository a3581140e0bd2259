"""What the embedded stack needs to know, and nothing else: the CLI builds it from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from schemas.kafka_principals import DEFAULT_USERNAMES as KAFKA_USERNAMES
from schemas.mqtt_principals import DEFAULT_USERNAMES
from stack.influx_provisioning import BucketRetention


@dataclass(frozen=True, slots=True)
class StackConfig:
    """Kafka, Mosquitto and InfluxDB as local processes (docs/configuration.md names the
    settings behind each field)."""

    cache_dir: Path  # installs, shared by every clone and keyed by their inputs
    home: Path  # data, configuration, logs and pid files of this instance
    bind_host: str
    kafka_version: str
    kafka_port: int  # clients: SASL_SSL (SCRAM-SHA-512) on bind_host
    kafka_controller_port: int  # KRaft's controller: loopback only, the broker's own login
    kafka_internal_port: int  # the broker's own inter-broker listener: loopback only
    kafka_heap: str
    kafka_partitions: int
    mqtt_port: int
    influx_version: str
    influx_port: int
    influx_org: str
    influx_bucket: str
    influx_username: str
    # Secrets: kept out of repr, so a logged or printed config never shows them.
    influx_password: str = field(repr=False)
    influx_token: str = field(repr=False)
    # Set up after the onboarding (stack/influx_provisioning.py): the indicator buckets with
    # their retention, and where the sink's and the readers' scoped tokens are written.
    influx_buckets: tuple[BucketRetention, ...]
    influx_tokens_dir: Path
    kafka_data_dir: Path | None = None  # None: under ``home`` (node n > 1: ``<dir>-n``)
    # The KRaft cluster (config/kafka_cluster.py): node n's ports are each port above plus
    # 100 (n - 1); every topic, internal ones included, has ``kafka_replication`` copies.
    kafka_brokers: int = 1
    kafka_replication: int = 1
    mosquitto_data_dir: Path | None = None
    influx_data_dir: Path | None = None
    # MQTT principals (schemas/mqtt_principals.py): each service principal's user name, and
    # the passwords configured for some of them; the others get generated ones.
    mqtt_usernames: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_USERNAMES))
    mqtt_passwords: dict[str, str] = field(default_factory=dict, repr=False)
    indicator_topic_root: str = "zc-indicators"  # the sink publishes, readers read, under it
    # Kafka principals (schemas/kafka_principals.py), as for MQTT; the worker's id and the
    # sink's group name the consumer groups their ACLs grant.
    kafka_usernames: dict[str, str] = field(default_factory=lambda: dict(KAFKA_USERNAMES))
    kafka_passwords: dict[str, str] = field(default_factory=dict, repr=False)
    worker_id: str = "zerocarbon-worker"
    sink_group: str = "zerocarbon-influx-sink"
    # Names the brokers' TLS certificate carries besides localhost and 127.0.0.1 (bind_host and
    # the host names clients use).
    tls_names: tuple[str, ...] = ()
    # With TLS, mqtt_port is the TLS listener (on bind_host) and mqtt_plain_port, if not 0, a
    # plaintext one on 127.0.0.1 only; without, mqtt_port is plaintext.
    mqtt_tls: bool = False
    mqtt_plain_port: int = 0
    # Mosquitto's queue per offline client (docs/local-stack.md, "How long the bridge may be away").
    mqtt_max_queued_messages: int = 1_000_000
    mqtt_max_queued_bytes: int = 256 * 1024 * 1024
    # Prometheus (stack/prometheus_server.py): run or not, where, how often it scrapes, and
    # whether its alerts wait their hold time before firing (the tests do not).
    prometheus: bool = False
    prometheus_port: int = 9479
    prometheus_scrape_seconds: float = 15.0
    prometheus_retention_days: int = 15
    prometheus_alert_holds: bool = True

    @property
    def metrics_targets_dir(self) -> Path:
        """Where the processes serving /metrics register (config/metrics_targets.py)."""
        return self.home / "prometheus" / "targets"
