"""Status files: how a long-running process (bridge, sink) tells `--status` how it is doing.

Each process rewrites its own ``<name>.status.json`` every second; a file older than a few
seconds means the process is gone or stuck.
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


def read_status_files(folder: Path) -> list[dict[str, Any]]:
    """Every process's last status, with ``age_seconds`` and ``fresh``."""
    out = []
    for path in sorted(folder.glob("*.status.json")):
        try:
            status: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        age = time.time() - float(status.get("updated_at", 0))
        status["age_seconds"] = round(age, 1)
        status["fresh"] = age < STALE_AFTER_SECONDS
        out.append(status)
    return out
