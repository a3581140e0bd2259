"""The bridge's status file: what `zerocarbon bridge --status` reads.

Each bridge process rewrites its file every second; a file older than a few seconds means
the process is gone or stuck. Several bridges (shared subscriptions) each have their own.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

STALE_AFTER_SECONDS = 5.0


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Replace the file atomically, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**status, "updated_at": time.time()}, indent=2))
    os.replace(tmp, path)


def read_statuses(folder: Path) -> list[dict[str, Any]]:
    """Every bridge's last status, each with ``ready`` (fresh, and connected to both brokers)."""
    out = []
    for path in sorted(folder.glob("*.status.json")):
        try:
            status: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        age = time.time() - float(status.get("updated_at", 0))
        status["age_seconds"] = round(age, 1)
        status["ready"] = (
            age < STALE_AFTER_SECONDS
            and bool(status.get("mqtt_connected"))
            and bool(status.get("kafka_ready"))
        )
        out.append(status)
    return out
