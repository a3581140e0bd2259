"""What `zerocarbon simulate` and `replay` need to know: the CLI builds it from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class DeviceSideConfig:
    """Where the device side sends, and the reference data (communes, registry) it draws on."""

    mqtt_host: str
    mqtt_port: int
    kafka_bootstrap: str  # `replay --to kafka`, as partners send
    reference_dir: Path
