"""What `zerocarbon view` needs to know, and nothing else: the CLI builds it from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from config.kafka_access import KafkaAccess
from sinks.influx_target import InfluxTarget


@dataclass(frozen=True, slots=True)
class ViewConfig:
    """The operators' page and where its sources are (docs/operators-view.md)."""

    host: str
    port: int
    refresh_seconds: float
    dead_letters_kept: int
    influx: InfluxTarget
    kafka: KafkaAccess
    worker_url: str  # the worker's page, http://host:port (its /counters)
    worker_group: str  # consumer groups whose lag the page shows
    sink_group: str
    sink_status_dir: Path
    bridge_status_dir: Path
    reference_dir: Path  # commune names, WHO guidelines
    time_zone: str = "UTC"  # where the indicator stage's days begin: "today" on the page
    evidence_bucket: str = "causal_evidence"  # what `zerocarbon analyse` writes
    # The token the page requires (None: open, which only loopback allows; docs/security.md),
    # and the one it shows the worker's /counters.
    token: str | None = None
    worker_token: str | None = None
