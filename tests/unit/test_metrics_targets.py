"""A process registers its /metrics for Prometheus' file discovery while it runs, and the files
of processes gone are removed by the next one (config/metrics_targets.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from config.metrics_targets import registered_target


def test_a_registered_process_is_a_target_while_it_runs(tmp_path: Path) -> None:
    with registered_target(tmp_path, "worker", "0.0.0.0", 6066, "/metrics"):
        (found,) = tmp_path.glob("*.json")
        assert found.name == f"worker-{os.getpid()}.json"
        assert json.loads(found.read_text()) == [
            {"targets": ["127.0.0.1:6066"], "labels": {"process": "worker", "pid": str(os.getpid())}}
        ]
    assert not list(tmp_path.glob("*.json"))


def test_the_target_of_a_process_gone_is_removed_by_the_next_one(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = tmp_path / f"sink-{int(dead.stdout)}.json"
    stale.write_text("[]")
    other = tmp_path / "bridge-1.json"  # pid 1 lives: kept
    other.write_text("[]")
    with registered_target(tmp_path, "bridge", "127.0.0.1", 9471):
        assert not stale.exists() and other.exists()


def test_a_folder_that_cannot_be_written_costs_a_warning_not_the_process(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    with registered_target(blocked / "targets", "sink", "127.0.0.1", 9472):
        pass
    with registered_target(None, "sink", "127.0.0.1", 9472):
        pass
