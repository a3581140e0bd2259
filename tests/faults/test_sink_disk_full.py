"""The sink's disk buffer full under load (issue 19): with InfluxDB away, memory fills, then
the spool reaches its size limit (ZC_SINK_SPOOL_MAX_BYTES, small here). The sink must stop
reading Kafka, keep its memory bound, say so once in its log and in its status file, lose
nothing when SIGKILLed in that state, and read on when InfluxDB drains the disk. Afterwards
every reading reconciles (tests/faults/territory.py), and every indicator update published
on zc.indicators during the test is in InfluxDB as its newest revision.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import INDICATOR_TOPIC
from schemas.indicator import IndicatorUpdate
from sinks.indicator_sink import WRITES_IN_FLIGHT
from sinks.influx_buckets import bucket_for_window
from sinks.influx_readback import PointId, stored_points
from sinks.influx_target import InfluxTarget
from stack.stack_config import StackConfig
from streams.kafka_admin import consumer_records_after, topic_ends
from tests.faults.territory import Territory
from tests.waiting import until
from zerocarbon.component_configs import influx_read_target

READINGS = 60_000  # 30 s at 2 000 readings/s: the sink pauses well before the load ends
MEMORY_LIMIT = 64 * 1024
SPOOL_LIMIT = 64 * 1024
REFUSED = "the disk buffer"  # the start of the ERROR line said once per episode
RESUMED = "has room again"  # the WARNING line that ends the episode


def sink_status(settings: Settings) -> dict[str, Any]:
    path = settings.stack_home / "sink" / "influx-sink.status.json"
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):  # absent, or replaced while read
        return {}


def disk_buffer_episodes(log: Path) -> list[str]:
    """The sink's disk-buffer lines in order: "refused" (the ERROR said once per episode) and
    "resumed" (the WARNING that ends one)."""
    episodes = []
    for line in log.read_bytes().decode(errors="replace").splitlines():
        if " ERROR " in line and REFUSED in line and "refused" in line:
            episodes.append("refused")
        elif " WARNING " in line and RESUMED in line:
            episodes.append("resumed")
    return episodes


async def limited_sink(territory: Territory, **env: str) -> None:
    """The territory's sink, restarted with ``env`` on top of the harness's own."""
    assert territory.sink.env is not None
    territory.sink.env = {**territory.sink.env, **env}
    await asyncio.to_thread(territory.sink.restart)


def newest_per_point(
    records: list[ConsumerRecord[bytes, bytes]], target: InfluxTarget
) -> tuple[dict[tuple[str, PointId], tuple[float, int, bool]], dict[tuple[str, PointId], list[str]]]:
    """The newest update of each InfluxDB point among zc.indicators records (partition order:
    a series is in one partition), as (bucket, point) -> (value, revision, final); and each
    point's updates as read (partition@offset, key, value, revision, final), to show when one
    is wrong."""
    out: dict[tuple[str, PointId], tuple[float, int, bool]] = {}
    history: dict[tuple[str, PointId], list[str]] = {}
    for record in records:
        if not record.value:
            continue  # a tombstone
        update = IndicatorUpdate.model_validate_json(record.value)
        tags = tuple(
            sorted({"window": update.window, **{k: v for k, v in update.dimensions.items() if v}}.items())
        )
        point = (
            bucket_for_window(update.window, target),
            (update.indicator, tags, int(update.window_start.timestamp())),
        )
        out[point] = (update.value, update.revision, update.final)
        history.setdefault(point, []).append(
            f"{record.partition}@{record.offset} {record.key!r} {update.value} r{update.revision} "
            f"{'final' if update.final else 'open'}"
        )
    return out, history


def stored_for(
    target: InfluxTarget, expected: dict[tuple[str, PointId], tuple[float, int, bool]]
) -> dict[tuple[str, PointId], tuple[float, int, bool]]:
    """What InfluxDB holds for the expected points, read per bucket and window over their times."""
    out: dict[tuple[str, PointId], tuple[float, int, bool]] = {}
    groups: dict[tuple[str, str], list[int]] = {}
    for bucket, (_, tags, seconds) in expected:
        groups.setdefault((bucket, dict(tags)["window"]), []).append(seconds)
    for (bucket, window), times in groups.items():
        begin = datetime.fromtimestamp(min(times), UTC)
        end = datetime.fromtimestamp(max(times), UTC) + timedelta(seconds=1)
        for point, fields in stored_points(target, bucket, window, begin, end).items():
            if (bucket, point) in expected:
                out[(bucket, point)] = (
                    float(fields.get("value", float("nan"))),  # type: ignore[arg-type]
                    int(fields.get("revision", -1)),  # type: ignore[call-overload]
                    bool(fields.get("final")),
                )
    return out


async def reconcile_indicator_updates(territory: Territory, timeout: float = 90) -> int:
    """Every point published on zc.indicators since the territory started is in InfluxDB as
    its newest update (value, revision, final), or as one published after it while InfluxDB
    was read: the worker goes on closing the last windows of a quiet partition a minute at a
    time (they were seen final in InfluxDB, open on the topic read just before). Read again
    until it holds or ``timeout``; the number of points."""
    target = influx_read_target(territory.settings)
    starts = {tp: o for tp, o in territory.starts.items() if tp.topic == INDICATOR_TOPIC}
    deadline = time.monotonic() + timeout
    while True:
        records = await consumer_records_after(territory.kafka, starts)
        expected, history = newest_per_point(records, target)
        stored = await asyncio.to_thread(stored_for, target, expected)
        read_up_to = dict(starts)
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            read_up_to[tp] = max(read_up_to[tp], record.offset + 1)
        since = published_since(await consumer_records_after(territory.kafka, read_up_to), target)
        wrong = [
            f"{bucket} {point}: InfluxDB {stored.get((bucket, point))}, published {newest}"
            for (bucket, point), newest in expected.items()
            if stored.get((bucket, point)) not in (newest, *since.get((bucket, point), ()))
        ]
        if not wrong or time.monotonic() > deadline:
            break
        await asyncio.sleep(3)
    assert expected, "no indicator update was published during the test"
    if wrong:
        restores = [
            line for line in territory.worker.log.read_text().splitlines() if "restored up to" in line
        ]
        shown = [
            point
            for point, newest in expected.items()
            if stored.get(point) not in (newest, *since.get(point, ()))
        ][:3]
        raise AssertionError(
            f"{len(wrong)} of {len(expected)} points not as last published: {wrong[:10]}; "
            f"updates of the first ones: {[history[point] for point in shown]}; "
            f"the worker's restores: {restores[-20:]}"
        )
    print(f"{len(expected)} indicator points, from {len(records)} updates, reconciled with InfluxDB")
    return len(expected)


def published_since(
    records: list[ConsumerRecord[bytes, bytes]], target: InfluxTarget
) -> dict[tuple[str, PointId], list[tuple[float, int, bool]]]:
    """Each point's updates among ``records``, in order."""
    out: dict[tuple[str, PointId], list[tuple[float, int, bool]]] = {}
    for record in records:
        newest, _ = newest_per_point([record], target)
        for point, update in newest.items():
            out.setdefault(point, []).append(update)
    return out


async def test_a_full_disk_buffer_stops_the_reading_and_the_sink_resumes_without_loss(
    settings: Settings, kafka_admin: KafkaAccess, stack_config: StackConfig, tmp_path: Path
) -> None:
    async with Territory(settings, kafka_admin, stack_config, tmp_path) as territory:
        await limited_sink(
            territory, ZC_SINK_MEMORY_LIMIT_BYTES=str(MEMORY_LIMIT), ZC_SINK_SPOOL_MAX_BYTES=str(SPOOL_LIMIT)
        )
        sink = territory.sink
        assert sink.proc is not None
        first_pid = sink.proc.pid
        influx = territory.stack_service("influxdb")
        load = await territory.start_load(count=READINGS)
        await territory.wait_raw_records(200)
        assert await asyncio.to_thread(influx.stop)

        await until(
            "the sink pausing its reading, its disk buffer full",
            lambda: (
                (s := sink_status(settings)).get("pid") == first_pid
                and s.get("reading_paused_by") == "disk_buffer_full"
            ),
            120,
            every=0.5,
        )
        paused = sink_status(settings)
        assert "ZC_SINK_SPOOL_MAX_BYTES" in paused["disk_buffer_error"]
        assert paused["kafka_ready"] is True and paused["failed"] is None
        assert 0 < paused["buffered_disk_bytes"] <= SPOOL_LIMIT
        assert paused["peak_memory_bytes"] <= MEMORY_LIMIT
        # Said once per episode, not at every retry. An episode may end while InfluxDB stops:
        # it finishes the writes in flight (graceful shutdown), and the room they free is real;
        # none can succeed after, so there are at most as many episodes before this one.
        episodes = disk_buffer_episodes(sink.log)
        assert episodes == ["refused", "resumed"] * (len(episodes) // 2) + ["refused"], episodes
        assert episodes.count("resumed") <= WRITES_IN_FLIGHT, episodes

        # It reads nothing more while the worker keeps publishing: Kafka keeps the rest.
        indicator_ends = await topic_ends(kafka_admin, [INDICATOR_TOPIC])
        read_then = sink_status(settings)["records"]
        deadline = time.monotonic() + 60
        while (
            sum((await topic_ends(kafka_admin, [INDICATOR_TOPIC])).values())
            < sum(indicator_ends.values()) + 500
        ):
            assert time.monotonic() < deadline, "the worker published too little meanwhile: raise READINGS"
            await asyncio.sleep(0.5)
        still = sink_status(settings)
        assert still["records"] == read_then and still["reading_paused_by"] == "disk_buffer_full"
        assert still["peak_memory_bytes"] <= MEMORY_LIMIT

        # SIGKILLed in that state: what it held in memory was never committed, Kafka has it.
        log_size = sink.log.stat().st_size
        await asyncio.to_thread(sink.kill)
        await asyncio.to_thread(sink.start)
        assert sink.proc is not None and sink.proc.pid != first_pid
        second_pid = sink.proc.pid
        await until(
            "the restarted sink pausing again (InfluxDB still away, the disk still full)",
            lambda: (
                (s := sink_status(settings)).get("pid") == second_pid
                and s.get("reading_paused_by") == "disk_buffer_full"
            ),
            120,
            every=0.5,
        )

        await asyncio.to_thread(influx.start)
        await asyncio.to_thread(influx.wait_ready)
        report = await load.finished()
        await until(
            "the sink reading again and its buffers drained",
            lambda: (
                (s := sink_status(settings)).get("influx_ok") is True
                and s.get("reading_paused_by") is None
                and s.get("buffered_disk_points") == 0
            ),
            180,
            every=0.5,
        )
        assert RESUMED in sink.log.read_bytes()[log_size:].decode(errors="replace")
        assert sink_status(settings)["peak_memory_bytes"] <= MEMORY_LIMIT
        await territory.reconcile(report)
        await reconcile_indicator_updates(territory)
        assert sink.running and territory.worker.restarts == 0
