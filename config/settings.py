"""The service's configuration: one typed object read from defaults, a TOML file and ZC_* env vars.

Precedence, highest first: environment variables (``ZC_KAFKA_PORT=29092``), the TOML file
named by ``ZC_CONFIG`` (default ``./zerocarbon.toml`` when it exists), then the defaults
below, which match the embedded local stack.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from config.development_secrets import DEVELOPMENT_INFLUX_PASSWORD, DEVELOPMENT_INFLUX_TOKEN
from config.kafka_cluster import MAX_BROKERS, bootstrap_servers, default_replication


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback)


def config_file_path() -> Path:
    """The TOML file consulted for settings: ``$ZC_CONFIG`` or ``./zerocarbon.toml``."""
    return Path(os.environ.get("ZC_CONFIG", "zerocarbon.toml"))


class Settings(BaseSettings):
    """Everything an operator may change, with defaults that run on one laptop."""

    model_config = SettingsConfigDict(env_prefix="ZC_", extra="forbid", frozen=True)

    # Where the embedded stack keeps what it installs (shared by every clone of the
    # repository, keyed by version) and what it runs (data, logs, pid files).
    cache_dir: Path = Field(default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache") / "zerocarbon")
    stack_home: Path = Field(
        default_factory=lambda: _xdg("XDG_STATE_HOME", ".local/state") / "zerocarbon" / "stack"
    )
    bind_host: str = Field(default="127.0.0.1", description="interface the local stack listens on")

    # Where the service's own processes reach the brokers (service names under compose).
    kafka_host: str = "127.0.0.1"
    mqtt_host: str = "127.0.0.1"
    influx_host: str = "127.0.0.1"

    kafka_version: str = "4.1.1"
    kafka_port: int = Field(default=9092, description="clients' listener: SASL_SSL, SCRAM-SHA-512")
    kafka_controller_port: int = Field(default=9093, description="KRaft controller, loopback only")
    kafka_internal_port: int = Field(default=9094, description="the broker's own listener, loopback only")
    kafka_internal_tls: bool = Field(
        default=False,
        description="`kafka setup` reaches the broker's own listener over TLS (compose's nodes)",
    )
    kafka_heap: str = Field(default="1g", description="JVM heap (-Xms and -Xmx) of the local broker")
    kafka_data_dir: Path | None = None
    kafka_partitions: int = Field(default=4, description="default partitions of new topics")
    kafka_brokers: int = Field(
        default=1,
        ge=1,
        le=MAX_BROKERS,
        description="brokers of the local stack's KRaft cluster; node n's ports are the first's + 100(n-1)",
    )
    kafka_replication_factor: int | None = Field(
        default=None, ge=1, description="copies of each topic the admin creates (default: min(brokers, 3))"
    )
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        description="host:port,... the clients reach first (default: every local broker at kafka_host)",
    )

    # Kafka principals (docs/security.md), one SCRAM-SHA-512 login each. A password left unset
    # is, on the local stack, the one `zerocarbon stack up` generated under
    # <stack_home>/kafka/secrets/.
    kafka_broker_password: SecretStr | None = Field(
        default=None, description="the broker's own login (loopback listeners; `kafka setup` elsewhere)"
    )
    kafka_admin_username: str = Field(default="zc-admin", description="super user: topics, principals, ACLs")
    kafka_admin_password: SecretStr | None = None
    kafka_bridge_username: str = Field(default="zc-bridge", description="writes zc.raw.*")
    kafka_bridge_password: SecretStr | None = None
    kafka_worker_username: str = Field(default="zc-worker", description="validation and indicators")
    kafka_worker_password: SecretStr | None = None
    kafka_sink_username: str = Field(default="zc-sink", description="reads and completes zc.indicators")
    kafka_sink_password: SecretStr | None = None
    kafka_view_username: str = Field(default="zc-view", description="the operators' page: dead letters, lag")
    kafka_view_password: SecretStr | None = None
    kafka_reader_username: str = Field(
        default="zc-reader", description="a downstream reader of zc.indicators"
    )
    kafka_reader_password: SecretStr | None = None
    kafka_collector_username: str = Field(
        default="zc-collector", description="the pull collectors: write zc.raw.* and dead letters"
    )
    kafka_collector_password: SecretStr | None = None
    kafka_sharer_username: str = Field(
        default="zc-sharer",
        description="the sharing stage: read zc.valid.*, zc.indicators and the agreements, write zc.share.*",
    )
    kafka_sharer_password: SecretStr | None = None
    kafka_analyst_username: str = Field(
        default="zc-analyst", description="the causal analysis: writes zc.causal-evidence"
    )
    kafka_analyst_password: SecretStr | None = None
    # TLS: the CA every client trusts (default: the one `stack up` made, <stack_home>/tls/ca.crt).
    tls_ca_file: Path | None = Field(default=None, description="CA certificate the clients trust")

    mqtt_port: int = Field(default=8883, description="the MQTT listener clients use (TLS when mqtt_tls)")
    mqtt_tls: bool = Field(default=True, description="clients reach mqtt_port over TLS, trusting the CA")
    mqtt_plain_port: int = Field(
        default=1883, ge=0, description="with mqtt_tls, a plaintext listener on 127.0.0.1 for local tools"
    )
    mosquitto_data_dir: Path | None = None
    # What Mosquitto queues for one offline client (the bridge, when it is down), beyond which
    # it drops what devices were told was delivered; Mosquitto 2.0 holds the queue in memory.
    # The bytes bind first: about 6.5 minutes of bridge outage at 2 000 readings/s of 330 bytes
    # (docs/local-stack.md, "How long the bridge may be away").
    mqtt_max_queued_messages: int = Field(
        default=1_000_000, ge=0, description="messages Mosquitto queues per offline client (0: no limit)"
    )
    prometheus: bool = Field(
        default=False, description="run Prometheus with the local stack (`zerocarbon stack up`)"
    )
    prometheus_port: int = Field(
        default=9479, description="the local stack's Prometheus, on loopback (9090 is Debian's own)"
    )
    prometheus_scrape_seconds: float = Field(
        default=15.0, gt=0, description="how often Prometheus scrapes and evaluates its rules"
    )
    mqtt_max_queued_bytes: int = Field(
        default=256 * 1024 * 1024, ge=0, description="bytes Mosquitto queues per offline client (0: no limit)"
    )
    # MQTT principals (docs/security.md). A password left unset is, on the local stack, the
    # one `zerocarbon stack up` generated under <stack_home>/mosquitto/secrets/.
    mqtt_admin_username: str = Field(default="zc-admin", description="the broker's dynamic-security admin")
    mqtt_admin_password: SecretStr | None = None
    mqtt_bridge_username: str = Field(default="zc-bridge", description="the bridge: subscribes to zc/+/+/+")
    mqtt_bridge_password: SecretStr | None = None
    mqtt_sink_username: str = Field(default="zc-sink", description="the sink: publishes retained indicators")
    mqtt_sink_password: SecretStr | None = None
    mqtt_reader_username: str = Field(default="zc-reader", description="reads the retained indicators")
    mqtt_reader_password: SecretStr | None = None
    mqtt_gateway_username: str = Field(default="zc-gateway", description="publishes for many devices")
    mqtt_gateway_password: SecretStr | None = None

    influx_version: str = "v2.7.12"
    influx_port: int = 8086
    influx_data_dir: Path | None = None
    influx_org: str = "zerocarbon"
    influx_bucket: str = "indicators"
    influx_username: str = "zerocarbon"
    influx_password: SecretStr = SecretStr(DEVELOPMENT_INFLUX_PASSWORD)
    # The operator (all-access) token: setup and administration only (`stack up`, `zerocarbon
    # influx setup`); no running service holds it. The development defaults are refused beyond
    # the loopback (config/development_secrets.py).
    influx_token: SecretStr = SecretStr(DEVELOPMENT_INFLUX_TOKEN)
    # Scoped tokens (docs/security.md): unset, each is read from the file setup wrote under
    # `influx_tokens_dir` (<stack_home>/influxdb/tokens/<sink|read|analysis>/token).
    influx_sink_token: SecretStr | None = Field(
        default=None, description="the sink's token: writes the two indicator buckets, nothing else"
    )
    influx_read_token: SecretStr | None = Field(
        default=None, description="the readers' token (page, demo, Grafana): reads the two buckets"
    )
    influx_analysis_token: SecretStr | None = Field(
        default=None, description="the analysis token: reads the indicator buckets, writes the evidence one"
    )
    influx_tokens_dir: Path | None = Field(
        default=None, description="where setup writes the scoped tokens (<stack_home>/influxdb/tokens)"
    )
    influx_retention_days: int = Field(
        default=0, ge=0, description="retention of `influx_bucket`; 0: forever"
    )
    influx_evidence_bucket: str = Field(
        default="causal_evidence", description="bucket of the causal evidence (`zerocarbon analyse`)"
    )
    influx_minute_bucket: str = Field(default="indicators_1m", description="bucket of the 1-minute windows")
    influx_minute_retention_days: int = Field(
        default=30, ge=1, description="retention of the 1-minute windows"
    )

    # The MQTT to Kafka bridge.
    bridge_linger_ms: float = Field(default=20.0, ge=0, description="readings packed per record within")
    bridge_receive_maximum: int = Field(default=20_000, ge=1, description="unacknowledged MQTT messages")
    bridge_mqtt_version: int = Field(
        default=5, description="5: session expiry and Receive Maximum; 311: less CPU per message"
    )
    bridge_shared_group: str | None = Field(default=None, description="MQTT 5 shared subscription group")
    bridge_metrics_port: int = Field(
        default=9471, ge=0, le=65535, description="the bridge's /metrics port (0: a free one, see its status)"
    )
    worker_id: str = "zerocarbon-worker"
    worker_instance_id: str | None = Field(
        default=None,
        description="Kafka static group membership id, unique per worker (default: dynamic membership)",
    )
    worker_session_timeout_seconds: float = Field(
        default=15.0, gt=2, description="a worker silent this long loses its partitions to the others"
    )
    worker_web_host: str = Field(
        default="127.0.0.1", description="interface the worker's page listens on, where the view reaches it"
    )
    worker_web_port: int = Field(default=6066, description="worker's HTTP port (counters, health)")
    worker_web_token: SecretStr | None = Field(
        default=None,
        description="bearer token the worker's page requires; needed when ZC_WORKER_WEB_HOST is not loopback",
    )

    # Event contracts and validation.
    reference_dir: Path | None = Field(default=None, description="reference data folder (default: shipped)")
    collector_state_dir: Path | None = Field(
        default=None,
        description="the pull collectors' cursors, one file per collector (default: <stack_home>/collectors)",
    )
    pseudonym_key_file: Path | None = Field(
        default=None,
        description="the HMAC-SHA256 keys of household pseudonyms "
        "(default: <stack_home>/sharing/pseudonym-keys.json)",
    )
    sharing_group: str = Field(
        default="zc-sharing",
        pattern=r"^zc-sharing[A-Za-z0-9._-]*$",
        description="the sharing stage's consumer group (its principal may use groups starting zc-sharing)",
    )
    time_zone: str = Field(
        default="Europe/Paris",
        description="the territory's IANA time zone: days, months and years of the indicators are its "
        "local ones (minute, quarter-hour and hour windows are the same everywhere)",
    )
    indicator_grace_seconds: int = Field(
        default=300, ge=0, description="out-of-order events within this still update their windows"
    )
    indicator_idle_close_seconds: float = Field(
        default=60.0,
        ge=0,
        description="a producer silent this long holds no window open; a partition silent this long "
        "closes its windows as time passes (0: neither)",
    )
    indicator_store_dir: Path | None = Field(
        default=None,
        description="closed windows kept for late readings, one RocksDB per partition "
        "(default: <stack_home>/worker/indicator-windows); every worker sharing the partitions must share it",
    )
    dedup_horizon_seconds: float = Field(default=3600.0, gt=0, description="resent event ids dropped within")
    indicator_checkpoint_seconds: float = Field(
        default=5.0, gt=0, description="a partition's indicator state is checkpointed at most this often"
    )
    indicator_flush_seconds: float = Field(
        default=1.0,
        ge=0.05,
        le=60.0,
        description="how often the worker sends the windows that moved to zc.indicators: shorter sends "
        "more updates per reading, which a loaded machine pays in latency (bench/README.md)",
    )

    # The InfluxDB sink (sinks/README.md): zc.indicators -> InfluxDB, and retained MQTT.
    sink_group: str = Field(default="zerocarbon-influx-sink", description="Kafka consumer group of the sink")
    sink_batch_size: int = Field(default=5000, ge=1, description="points per InfluxDB write request")
    sink_flush_interval_seconds: float = Field(default=1.0, gt=0, description="longest wait before a write")
    sink_memory_limit_bytes: int = Field(
        default=32 * 1024 * 1024, ge=4096, description="points buffered in memory, beyond: on disk"
    )
    sink_spool_dir: Path | None = Field(
        default=None, description="disk buffer (default: <stack_home>/sink/spool)"
    )
    sink_spool_max_bytes: int = Field(
        default=20 * 1024**3,
        ge=4096,
        description="disk buffer limit: reached (or the disk full), the sink pauses its Kafka reading",
    )
    sink_gzip: bool = Field(default=True, description="gzip write requests")
    sink_request_timeout_seconds: float = Field(default=10.0, gt=0, description="one write request")
    sink_max_backoff_seconds: float = Field(default=30.0, gt=0, description="longest wait between retries")
    sink_mqtt_retained: bool = Field(default=True, description="republish latest indicators as retained MQTT")
    sink_mqtt_topic_root: str = Field(default="zc-indicators", description="root of the retained topics")
    sink_metrics_port: int = Field(
        default=9472, ge=0, le=65535, description="the sink's /metrics port (0: a free one, see its status)"
    )
    collector_metrics_port: int = Field(
        default=9473, ge=0, le=65535, description="`zerocarbon collect`'s /metrics port (0: a free one)"
    )
    sharing_metrics_port: int = Field(
        default=9474, ge=0, le=65535, description="`zerocarbon share`'s /metrics port (0: a free one)"
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="interface /metrics listens on (the bridge, the sink, the collectors, the sharing stage)",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="bearer token of the bridge's and the sink's /metrics; needed beyond loopback",
    )

    # The operators' live web page (operators_view/, docs/operators-view.md): read-only, polls
    # its sources only while a browser is connected.
    view_host: str = Field(default="127.0.0.1", description="interface the operators' page listens on")
    view_port: int = Field(default=8088, ge=1, le=65535, description="HTTP port of the operators' page")
    view_refresh_seconds: float = Field(
        default=2.0, ge=0.5, description="how often the page's figures are refreshed while someone watches"
    )
    view_dead_letters_kept: int = Field(
        default=20, ge=1, le=500, description="latest dead-letter reasons the page shows"
    )
    view_token: SecretStr | None = Field(
        default=None,
        description="bearer token the operators' page requires; needed when ZC_VIEW_HOST is not loopback",
    )

    # Every command: how much it logs (`--log-level` overrides it for one run).
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # The bridge's MQTT client id, which keeps its persistent session (`--client-id` overrides).
    bridge_client_id: str = Field(default="zerocarbon-bridge", min_length=1)

    @field_validator("influx_bucket", "influx_minute_bucket")
    @classmethod
    def _plain_bucket_name(cls, value: str) -> str:
        if not value or "\t" in value or value.startswith("_"):
            raise ValueError("a bucket name is not empty, has no tab and does not start with '_'")
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        if value != "UTC":
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"{value!r} is not in the IANA time zone database here: give a name such as "
                    "Europe/Paris or UTC (a machine without /usr/share/zoneinfo reads the tzdata package)"
                ) from None
        return value

    @field_validator("bridge_mqtt_version")
    @classmethod
    def _known_mqtt_version(cls, value: int) -> int:
        if value not in (5, 311):
            raise ValueError("the bridge speaks MQTT 5 or 3.1.1: use 5 or 311")
        return value

    @field_validator("view_token", "worker_web_token", "metrics_token")
    @classmethod
    def _long_web_token(cls, value: SecretStr | None) -> SecretStr | None:
        # A short token can be guessed over HTTP; say how to make a good one.
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError(
                "a web token has at least 16 characters: use a random one, e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=config_file_path()),
        )

    @property
    def kafka_bootstrap(self) -> str:
        if self.kafka_bootstrap_servers:
            return self.kafka_bootstrap_servers
        return bootstrap_servers(self.kafka_host, self.kafka_port, self.kafka_brokers)

    @property
    def kafka_replication(self) -> int:
        """The replication factor of the topics the admin creates."""
        return self.kafka_replication_factor or default_replication(self.kafka_brokers)

    @property
    def influx_url(self) -> str:
        return f"http://{self.influx_host}:{self.influx_port}"

    @cached_property
    def masked(self) -> dict[str, Any]:
        """The settings as plain data with secrets hidden, for ``zerocarbon config show``."""
        shown: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                shown[name] = "********"
            elif isinstance(value, Path):
                shown[name] = str(value)
            else:
                shown[name] = value
        return shown
