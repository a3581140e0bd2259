"""The bridge's readiness, read from its status files (one per bridge process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from config.status_files import read_status_files


def read_statuses(folder: Path) -> list[dict[str, Any]]:
    """Every bridge's last status, each with ``ready`` (fresh, and connected to both brokers)."""
    statuses = read_status_files(folder)
    for status in statuses:
        status["ready"] = (
            status["fresh"] and bool(status.get("mqtt_connected")) and bool(status.get("kafka_ready"))
        )
    return statuses
