"""Results stay exact when the worker is killed (SIGKILL) in the middle of a run.

2 000 readings of one meter (tertiary electricity in Aytré, alone on partition 1), 0.5 kWh
each, one every 30 s from midnight yesterday: 120 readings, i.e. 60 kWh, in every full hour.
The worker is killed twice: once after it counted the first part and checkpointed it, once
right after it counted readings of the second part, before its next one-second checkpoint,
so that the restarted worker must count those again from the raw records. Every hour must
end at exactly 60 kWh.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.catalogue import CHECKPOINT_TOPIC, INDICATOR_TOPIC, raw_topic, valid_topic
from streams.indicator_checkpoints import checkpoint_key
from zerocarbon.demo import WORKER_READY, worker_counters
from zerocarbon.processes import spawn_command, stop_child, wait_for_log
from zerocarbon.settings import Settings

METER = "golden-17028-0002"  # partition 1 of 4
SERIES = {"carrier": "electricity", "commune": "17028", "sector": "tertiary"}
READINGS = 2000


def _start_worker(log: Path) -> subprocess.Popen[bytes]:
    offset = log.stat().st_size if log.exists() else 0
    proc = spawn_command(["worker"], log)
    wait_for_log(proc, log, WORKER_READY, timeout=120, offset=offset)
    return proc


def _records(run: str, start: datetime, ks: range) -> list[bytes]:
    events = [
        {
            "event_id": f"{run}-{k}",
            "producer_id": "golden-tests",
            "event_time": (start + timedelta(seconds=30 * k)).isoformat(),
            "meter_id": METER,
            "commune": "17028",
            "sector": "tertiary",
            "carrier": "electricity",
            "quantity": 500,
            "unit": "Wh",
            "kind": "interval",
            "interval_start": (start + timedelta(seconds=30 * k - 30)).isoformat(),
        }
        for k in ks
    ]
    return [json.dumps(events[i : i + 50]).encode() for i in range(0, len(events), 50)]


async def _produce(settings: Settings, values: list[bytes], key: bytes | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(raw_topic("energy"), value, key=METER.encode())
    finally:
        await producer.stop()


async def _wait_counted(settings: Settings, at_least: int, timeout: float = 90) -> None:
    """Until the running worker's indicator stage has counted ``at_least`` readings."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        with contextlib.suppress(OSError):  # OSError: the worker's web server is not up yet
            if worker_counters(settings)["indicators"].get("counted", 0) >= at_least:
                return
        await asyncio.sleep(0.05)
    raise TimeoutError("the worker counted nothing")


async def _hourly_finals(settings: Settings, day: datetime, hours: int, timeout: float) -> dict[int, float]:
    consumer = AIOKafkaConsumer(
        INDICATOR_TOPIC, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    finals: dict[int, float] = {}
    lo, hi = day.timestamp(), (day + timedelta(hours=hours)).timestamp()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and len(finals) < hours:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    u = json.loads(record.value or b"{}")
                    start = datetime.fromisoformat(u["window_start"]).timestamp()
                    if (
                        u["indicator"] == "energy_consumed_kwh" and u["window"] == "1h"
                        and u["dimensions"] == SERIES and lo <= start < hi and u["final"]
                    ):  # fmt: skip
                        finals[int(start)] = round(u["value"], 6)
    finally:
        await consumer.stop()
    return finals


async def test_hourly_totals_are_exact_across_two_sigkills(settings: Settings, tmp_path: Path) -> None:
    async def tombstone() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(CHECKPOINT_TOPIC, None, key=checkpoint_key(valid_topic("energy"), 1))
        finally:
            await producer.stop()

    await tombstone()
    run = uuid.uuid4().hex[:8]
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    log = tmp_path / "worker.log"
    worker = _start_worker(log)
    try:
        await _produce(settings, _records(run, day, range(0, 800)))
        await asyncio.sleep(1.5)
        worker.kill()  # SIGKILL: no commit, no flush
        worker.wait()
        worker = _start_worker(log)
        await _produce(settings, _records(run, day, range(800, 1600)))
        await _wait_counted(settings, at_least=1)  # this worker has counted some of them...
        worker.kill()  # ...and dies before checkpointing them (the flush runs once a second)
        worker.wait()
        worker = _start_worker(log)
        await _produce(settings, _records(run, day, range(1600, READINGS)))
        # A later reading closes every hour above (its own hour is not checked).
        await _produce(settings, _records(run + "-closer", day + timedelta(hours=20), range(1)))
        full_hours = READINGS * 30 // 3600  # 16 full hours, the 17th is partial
        finals = await _hourly_finals(settings, day, full_hours, timeout=120)
    finally:
        stop_child(worker)
    expected = {int((day + timedelta(hours=h)).timestamp()): 60.0 for h in range(full_hours)}
    assert finals == expected
