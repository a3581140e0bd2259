"""InfluxDB away for 5 minutes under load (issue 19): the sink keeps reading, its memory stays
under its bound and the rest goes to its disk buffer; SIGKILLed in the middle of the outage it
restarts from the disk and Kafka's committed positions; when InfluxDB is back the disk drains.
Afterwards every reading reconciles (tests/faults/territory.py) and every indicator update
published on zc.indicators during the test is in InfluxDB as its newest revision.

(This scenario replaces tests/integration/test_influx_outage.py: the same outage, restart and
bound, under a territory's load instead of one meter, reconciled in full.)
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from config.kafka_access import KafkaAccess
from config.settings import Settings
from stack.stack_config import StackConfig
from tests.faults.territory import Territory
from tests.faults.test_sink_disk_full import limited_sink, reconcile_indicator_updates, sink_status
from tests.waiting import until

OUTAGE_SECONDS = 300
RATE = 400  # readings/s, the whole outage long
READINGS = RATE * (OUTAGE_SECONDS + 30)
MEMORY_LIMIT = 1024 * 1024  # a few thousand points: the outage must go to disk


async def test_influxdb_away_for_five_minutes_under_load_fills_the_disk_buffer_and_drains_it(
    settings: Settings, kafka_admin: KafkaAccess, stack_config: StackConfig, tmp_path: Path
) -> None:
    async with Territory(settings, kafka_admin, stack_config, tmp_path) as territory:
        await limited_sink(territory, ZC_SINK_MEMORY_LIMIT_BYTES=str(MEMORY_LIMIT))
        sink = territory.sink
        influx = territory.stack_service("influxdb")
        load = await territory.start_load(count=READINGS, rate=RATE)
        await territory.wait_raw_records(200)
        assert await asyncio.to_thread(influx.stop)
        outage_began = time.monotonic()

        def pid() -> int:
            assert sink.proc is not None
            return sink.proc.pid

        first = pid()
        await until(
            "a spill to disk",
            lambda: (s := sink_status(settings)).get("pid") == first and s.get("disk_segments", 0) > 0,
            120,
            every=0.5,
        )
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS / 3 - (time.monotonic() - outage_began)))
        before_kill = sink_status(settings)
        assert before_kill["influx_ok"] is False and before_kill["reading_paused_by"] is None
        assert 0 < before_kill["peak_memory_bytes"] <= MEMORY_LIMIT

        await asyncio.to_thread(sink.kill)  # no goodbye: memory is lost, the disk must suffice
        await asyncio.to_thread(sink.start)
        second = pid()
        await until(
            "the restarted sink's status", lambda: sink_status(settings).get("pid") == second, 60, every=0.5
        )
        assert sink_status(settings)["buffered_disk_points"] >= before_kill["buffered_disk_points"]

        most_on_disk = 0
        while time.monotonic() - outage_began < OUTAGE_SECONDS:
            status = sink_status(settings)
            most_on_disk = max(most_on_disk, status.get("buffered_disk_points", 0))
            assert status.get("peak_memory_bytes", 0) <= MEMORY_LIMIT
            assert status.get("failed") is None
            await asyncio.sleep(2)
        assert not load.done, "the load ended before InfluxDB came back: raise READINGS"
        during = sink_status(settings)
        assert (
            during["influx_ok"] is False
            and during["buffered_disk_points"] > before_kill["buffered_disk_points"]
        )

        await asyncio.to_thread(influx.start)
        await asyncio.to_thread(influx.wait_ready)
        report = await load.finished(timeout=600)
        await until(
            "the disk buffer to drain",
            lambda: (
                (s := sink_status(settings)).get("influx_ok") is True
                and s.get("buffered_disk_points") == 0
                and s.get("buffered_memory_points") == 0
            ),
            300,
            every=0.5,
        )
        after = sink_status(settings)
        assert after["peak_memory_bytes"] <= MEMORY_LIMIT
        print(f"at most {most_on_disk} points on disk during the outage")
        await territory.reconcile(report)
        await reconcile_indicator_updates(territory)
        assert sink.running and sink.kills == 1 and territory.worker.restarts == 0
