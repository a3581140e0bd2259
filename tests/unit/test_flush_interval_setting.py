"""The worker's flush interval is a setting carried to the worker (ZC_INDICATOR_FLUSH_SECONDS),
bounded; the latency bench (bench/flush_intervals.py) reads its pairs and reduces its runs to
medians per pair."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from config.settings import Settings
from zerocarbon.component_configs import worker_config

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))  # bench's scripts import each other
from flush_intervals import pair_env, parse_pairs, summary_rows


def test_the_flush_interval_is_a_setting_carried_to_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZC_INDICATOR_FLUSH_SECONDS", raising=False)
    assert worker_config(Settings()).flush_seconds == 1.0
    monkeypatch.setenv("ZC_INDICATOR_FLUSH_SECONDS", "0.25")
    assert worker_config(Settings()).flush_seconds == 0.25


@pytest.mark.parametrize("value", ["0", "0.01", "61", "-1"])
def test_a_flush_interval_out_of_bounds_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    # A zero interval would spin the event loop; an hour would freeze every figure.
    monkeypatch.setenv("ZC_INDICATOR_FLUSH_SECONDS", value)
    with pytest.raises(ValidationError, match="indicator_flush_seconds"):
        Settings()


def test_pairs_are_worker_then_sink_seconds() -> None:
    assert parse_pairs("1:1, 0.25:0.5") == [(1.0, 1.0), (0.25, 0.5)]
    assert dict(pair_env((0.25, 0.5))) == {
        "ZC_INDICATOR_FLUSH_SECONDS": "0.25",
        "ZC_SINK_FLUSH_INTERVAL_SECONDS": "0.5",
    }
    with pytest.raises(argparse.ArgumentTypeError, match="WORKER:SINK"):
        parse_pairs("1,0.5")


def _run(worker: float, sink: float, p99: float, worker_cpu: float | None) -> dict[str, Any]:
    return {
        "worker_flush_seconds": worker,
        "sink_flush_seconds": sink,
        "latency_seconds": {"p50": p99 / 2, "p99": p99, "max": p99 + 1},
        "updates_per_reading": 0.1,
        "cpu_seconds_per_million_readings": {"worker": worker_cpu, "sink": 5.0},
        "ours_cpu_seconds_per_million_readings": 50.0,
    }


def test_each_pair_gets_the_median_of_its_own_runs() -> None:
    runs = [_run(1, 1, 2.0, 40.0), _run(0.25, 0.25, 0.8, 70.0), _run(1, 1, 3.0, 44.0), _run(1, 1, 9.0, None)]
    rows = summary_rows(runs, [(1.0, 1.0), (0.25, 0.25)])
    one, quarter = rows
    assert one[:5] == [1.0, 1.0, 3, 1.5, 3.0]  # p50 median of 1, 1.5, 4.5; p99 of 2, 3, 9
    assert one[7] == 42.0  # a run without the figure does not count as zero
    assert quarter[:5] == [0.25, 0.25, 1, 0.4, 0.8] and quarter[7] == 70.0
