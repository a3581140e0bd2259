"""The sink process's loops: one that dies stops the process (non-zero) and names itself in
the status file; a malformed record does not kill the territory rollup."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from config.kafka_access import KafkaAccess
from config.status_files import read_status_files
from sinks.carbon_trajectory import TargetPath, Trajectory
from sinks.indicator_sink import IndicatorSink
from sinks.influx_target import InfluxTarget
from sinks.sink_config import SinkConfig
from sinks.sink_loops import LoopDied, run_until_one_dies
from sinks.territory_rollup import TerritoryRollup


async def until_stopped(stop: asyncio.Event) -> None:
    await stop.wait()


async def dies(stop: asyncio.Event) -> None:
    await asyncio.sleep(0)
    raise ValueError("a record it could not read")


async def returns_early(stop: asyncio.Event) -> None:
    await asyncio.sleep(0)


async def test_a_loop_that_dies_stops_the_others_and_is_raised_named() -> None:
    stop = asyncio.Event()
    reported: list[tuple[str, str]] = []
    with pytest.raises(LoopDied) as died:
        await run_until_one_dies(
            {"sink": until_stopped, "territory rollup": dies},
            stop,
            lambda n, e: reported.append((n, repr(e))),
        )
    assert died.value.loop == "territory rollup" and isinstance(died.value.__cause__, ValueError)
    assert reported == [("territory rollup", "ValueError('a record it could not read')")]
    assert stop.is_set()  # the sink was asked to stop, and did


async def test_a_loop_that_returns_before_the_stop_counts_as_dead() -> None:
    stop = asyncio.Event()
    reported: list[str] = []
    with pytest.raises(LoopDied, match="returned before"):
        await run_until_one_dies(
            {"sink": until_stopped, "territory rollup": returns_early}, stop, lambda n, e: reported.append(n)
        )
    assert reported == ["territory rollup"]


async def test_a_stop_ends_every_loop_without_an_error() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_soon(stop.set)
    await run_until_one_dies(
        {"sink": until_stopped, "territory rollup": until_stopped}, stop, lambda n, e: None
    )


def test_the_status_file_names_the_loop_that_died(tmp_path: Path) -> None:
    config = SinkConfig(
        influx=InfluxTarget(
            url="http://127.0.0.1:1", token="t", org="o", bucket="b", minute_bucket="m",
            retention_days=0, minute_retention_days=30,
        ),
        kafka=KafkaAccess(bootstrap="127.0.0.1:1"),
        partitions=1, group="g", status_dir=tmp_path, spool_dir=tmp_path / "spool", batch_size=10,
        flush_interval_seconds=1, memory_limit_bytes=1 << 20, gzip=False, request_timeout_seconds=1,
        max_backoff_seconds=1, mqtt_retained=False, mqtt_topic_root="zc", mqtt_host="127.0.0.1", mqtt_port=1,
    )  # fmt: skip
    sink = IndicatorSink(config)
    sink.loop_died("territory rollup", ValueError("boom"))
    [status] = read_status_files(tmp_path)
    assert status["failed"] == "territory rollup: ValueError('boom')"
    assert status["kafka_ready"] is False


def test_a_malformed_ytd_emissions_record_is_skipped_by_the_rollup() -> None:
    rollup = TerritoryRollup(
        Trajectory(TargetPath(((2019, 1000.0), (2030, 700.0))), TargetPath(((2019, 1000.0),)))
    )
    for hostile in (
        b'{"window":"ytd", "indicator": "emissions_kgco2e", truncated',
        json.dumps({"window": "ytd", "indicator": "emissions_kgco2e"}).replace(" ", "").encode(),
        b'{"window":"ytd","indicator":"emissions_kgco2e","window_start":"2026-01-01T00:00:00Z","value":null}',
    ):
        rollup.offer(b"k", hostile)  # raised before: the rollup, and the sink process, died
    assert rollup.unreadable == 3 and rollup.latest == {}
    rollup.offer(
        b"k",
        b'{"window":"ytd","indicator":"emissions_kgco2e","window_start":"2026-01-01T00:00:00Z","value":2.5}',
    )
    assert rollup.latest == {b"k": (2026, 2.5)}
