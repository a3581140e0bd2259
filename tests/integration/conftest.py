"""The integration tier runs against the real local stack, started once per test run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stack import control
from zerocarbon.demo import WORKER_READY
from zerocarbon.processes import spawn_command, stop_child, wait_for_log
from zerocarbon.settings import Settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent.name == "integration":
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def local_stack(settings: Settings) -> Iterator[Settings]:
    """Bring Kafka, Mosquitto and InfluxDB up (idempotent) and leave them running after."""
    report = control.up(settings)
    assert all(service["healthy"] for service in report), report
    yield settings


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A `zerocarbon worker` for the module's tests, started as an operator would; its log path."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    proc = spawn_command(["worker"], log)
    try:
        wait_for_log(proc, log, WORKER_READY, timeout=120)
        yield log
    finally:
        stop_child(proc)
