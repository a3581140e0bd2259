"""What the worker needs to know, and nothing else: the CLI builds it from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from config.kafka_access import KafkaAccess
from schemas.local_calendar import DEFAULT_TIME_ZONE


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """The faust worker's configuration (docs/configuration.md names the settings behind it)."""

    worker_id: str
    kafka: KafkaAccess
    partitions: int
    data_dir: Path
    web_host: str
    web_port: int
    replication: int = 1  # copies of the topics faust makes itself (the assignor's leader topic)
    session_timeout_seconds: float = 15.0
    instance_id: str | None = None
    dedup_horizon_seconds: float = 3600.0
    grace_seconds: int = 300
    # The territory's IANA time zone: where its days and years begin (local_calendar.py).
    time_zone: str = DEFAULT_TIME_ZONE
    checkpoint_seconds: float = 5.0
    # How often the windows that moved are sent to zc.indicators (and checkpoints considered).
    flush_seconds: float = 1.0
    # A partition that receives nothing this long closes its windows as time passes; 0: never.
    idle_close_seconds: float = 0.0
    reference_dir: Path | None = None
    # Closed windows kept for late readings, one RocksDB per partition; shared by every worker here.
    store_dir: Path = Path("indicator-windows")
    # Where the worker registers its /metrics for Prometheus (config/metrics_targets.py); None: nowhere.
    metrics_targets: Path | None = None
    # The bearer token /counters requires; None: open, which only loopback allows (docs/security.md).
    web_token: str | None = None
