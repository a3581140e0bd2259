"""Where each running process serves /metrics, written for Prometheus' file discovery.

A bridge, a sink or a worker registers itself once its endpoint is bound: one file per process
in the targets folder (``<stack home>/prometheus/targets``), removed when it stops. Prometheus
(stack/prometheus_server.py, or any Prometheus given the folder) reads the folder as it
changes: its scrape targets follow what runs, several bridges, a sink restarted on another
port, without a configuration to regenerate. A process killed leaves its file: the next
process to register removes the files of processes gone (until then Prometheus sees the
target down, which is what happened).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _forget_the_dead(folder: Path) -> None:
    for found in folder.glob("*.json"):
        pid = found.stem.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            found.unlink(missing_ok=True)


def target_document(role: str, host: str, port: int, path: str = "/metrics") -> list[dict[str, object]]:
    """The file discovery document of one process: its address, and labels naming it."""
    scraped = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # bound to all: reach it on loopback
    labels = {"process": role, "pid": str(os.getpid())}
    if path != "/metrics":
        labels["__metrics_path__"] = path
    return [{"targets": [f"{scraped}:{port}"], "labels": labels}]


@contextmanager
def registered_target(
    folder: Path | None, role: str, host: str, port: int, path: str = "/metrics"
) -> Iterator[None]:
    """While the block runs, this process is a scrape target in ``folder`` (None: nowhere). A
    folder that cannot be written costs a warning, never the process."""
    written: Path | None = None
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _forget_the_dead(folder)
            written = folder / f"{role}-{os.getpid()}.json"
            partial = written.with_suffix(".tmp")  # Prometheus reads *.json: never half a file
            partial.write_text(json.dumps(target_document(role, host, port, path)))
            partial.replace(written)
        except OSError as exc:
            log.warning("cannot register %s:%d for Prometheus in %s: %s", host, port, folder, exc)
            written = None
    try:
        yield
    finally:
        if written is not None:
            written.unlink(missing_ok=True)
