"""A process that keeps ending fires ZcProcessRestartLoop on the real Prometheus (issue 23).

The rule counts the series of ``process_start_time_seconds`` gone within 15 minutes, one per
process run (each registers its pid as a label: config/metrics_targets.py). Proven on
synthetic series by promtool (tests/unit/test_alert_rules.py); here a bridge is killed three
times, as a crash loop under a supervisor would end it, and Prometheus, scraping each run,
fires the alert for the bridge, and only then. Its TSDB is this test's own: series of
processes earlier modules ended would count too.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from stack.prometheus_server import PrometheusServer, without_holds
from stack.stack_config import StackConfig
from tests.integration.conftest import forget_bridge_session
from tests.waiting import until
from zerocarbon.processes import start_service, stop_child

ALERT = "ZcProcessRestartLoop"


@pytest.fixture
def prometheus(stack_config: StackConfig, tmp_path: Path) -> Iterator[PrometheusServer]:
    """The stack's Prometheus (rules without holds, a scrape a second) on a TSDB of its own,
    reading the targets the processes register."""
    home = tmp_path / "home"
    (home / "prometheus").mkdir(parents=True)
    stack_config.metrics_targets_dir.mkdir(parents=True, exist_ok=True)  # no process registered yet
    (home / "prometheus" / "targets").symlink_to(stack_config.metrics_targets_dir, target_is_directory=True)
    server = PrometheusServer(replace(without_holds(stack_config), home=home, prometheus_scrape_seconds=1))
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _firing_for(server: PrometheusServer, process: str) -> bool:
    return bool(server.query(f'ALERTS{{alertname="{ALERT}", alertstate="firing", process="{process}"}}'))


def _scraped(server: PrometheusServer, pid: int) -> bool:
    return bool(server.query(f'process_start_time_seconds{{process="bridge", pid="{pid}"}}'))


async def test_a_bridge_killed_three_times_fires_the_restart_loop_alert(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    client_id = f"zc-restart-loop-{uuid.uuid4().hex[:8]}"
    runs: list[subprocess.Popen[bytes]] = []
    try:
        for run in range(4):
            proc = start_service(["bridge", "--client-id", client_id], tmp_path / f"bridge-{run}.log")
            runs.append(proc)
            pid = proc.pid
            await until(f"bridge run {run} (pid {pid}) scraped", lambda: _scraped(prometheus, pid))  # noqa: B023
            if run < 3:
                # Two runs ended are a bad moment, not a loop: the rule waits for the third.
                assert not _firing_for(prometheus, "bridge"), f"{ALERT} fired after {run} runs ended"
                proc.kill()  # no goodbye, as a crash ends it
                proc.wait(timeout=30)
        await until(f"{ALERT} firing for the bridge", lambda: _firing_for(prometheus, "bridge"), 90)
        assert runs[-1].poll() is None  # the loop is about the runs that ended, the last one lives
    finally:
        for proc in runs:
            if proc.poll() is None:
                stop_child(proc)
        forget_bridge_session(client_id)
