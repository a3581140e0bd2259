"""`zerocarbon stack` reports real health, and `up` is idempotent."""

import json
import subprocess
import sys

from stack import control
from stack.stack_config import StackConfig


def _status_cli() -> tuple[int, list[dict[str, object]]]:
    proc = subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", "stack", "status"], capture_output=True, text=True
    )
    return proc.returncode, json.loads(proc.stdout)


def test_status_reports_all_three_healthy_with_versions() -> None:
    code, report = _status_cli()
    assert code == 0
    by_name = {s["name"]: s for s in report}
    assert set(by_name) == {"kafka", "mosquitto", "influxdb"}
    assert all(s["healthy"] and s["running"] for s in report)
    assert str(by_name["kafka"]["version"]).startswith("4.")
    assert str(by_name["influxdb"]["version"]).startswith("v2.")
    assert str(by_name["mosquitto"]["version"]).startswith("2.")
    assert all(str(s["log_file"]).endswith(".log") for s in report)


def test_up_twice_keeps_the_same_processes(stack_config: StackConfig) -> None:
    before = {s.name: s.process.pid() for s in control.services(stack_config)}
    control.up(stack_config)
    after = {s.name: s.process.pid() for s in control.services(stack_config)}
    assert before == after
    assert all(pid is not None for pid in after.values())


def test_status_exits_non_zero_when_a_service_is_down(stack_config: StackConfig) -> None:
    mosquitto = next(s for s in control.services(stack_config) if s.name == "mosquitto")
    mosquitto.stop()
    try:
        code, report = _status_cli()
        assert code == 1
        down = next(s for s in report if s["name"] == "mosquitto")
        assert down["healthy"] is False and down["detail"] == "not running"
    finally:
        control.up(stack_config)
