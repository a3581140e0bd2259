"""InfluxDB goes away for 60 s mid-run, and the sink is killed while points wait on disk:
afterwards every indicator point is in InfluxDB with the golden figures, and the sink's
memory stayed under its configured bound.

Input: the golden-tests meter (residential electricity in Aytré, 0.0520 kgCO2e/kWh), one
interval reading every 5 minutes over three hours H, H+1, H+2 of a random recent day, reading
i covering [H + 5 i min, H + 5 (i + 1) min) with 100 + 7 i Wh (a reading counts in the window
where its interval starts), then one reading at H+4:02.5 that moves the watermark past
every window. Expected, by arithmetic on that list:
    1m window of reading i            = (100 + 7 i) / 1000 kWh
    15m window q (readings 3q..3q+2)  = sum of their Wh / 1000
    hour k (readings 12k..12k+11)     = sum of their Wh / 1000; emissions = that x 0.0520
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from influxdb_client import InfluxDBClient

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import INDICATOR_TOPIC, raw_topic
from schemas.kafka_principals import SINK as SINK_PRINCIPAL
from schemas.kafka_principals import sink_acls
from sinks.influx_buckets import bucket_for_window
from sinks.influx_readback import read_indicator
from sinks.influx_target import InfluxTarget
from stack import control
from stack.stack_config import StackConfig
from streams.kafka_admin import start_group_at_end
from tests.integration.golden_meters import RESIDENTIAL
from tests.kafka_grants import grant, withdraw
from zerocarbon.processes import start_service, stop_child

METER = RESIDENTIAL.meter_id
SERIES = RESIDENTIAL.series
FACTOR = 0.0520
MEMORY_LIMIT = 8192  # a few dozen points: the outage must go to disk
OUTAGE_SECONDS = 60


def reading(event_id: str, end: datetime, wh: float) -> bytes:
    return json.dumps(
        {
            "event_id": event_id, "producer_id": "golden-tests", "event_time": end.isoformat(),
            "meter_id": METER, "commune": "17028", "sector": "residential",
            "carrier": "electricity", "quantity": wh, "unit": "Wh", "kind": "interval",
            "interval_start": (end - timedelta(minutes=5)).isoformat(),
        }
    ).encode()  # fmt: skip


async def send(kafka: KafkaAccess, records: list[bytes]) -> None:
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for value in records:
            await producer.send_and_wait(raw_topic("energy"), value, key=RESIDENTIAL.commune.encode())
    finally:
        await producer.stop()


def sink_status(settings: Settings) -> dict[str, Any]:
    path = settings.stack_home / "sink" / "influx-sink.status.json"
    return json.loads(path.read_text()) if path.exists() else {}


async def wait_until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout:.0f}s")
        await asyncio.sleep(0.5)


async def wait_until_quiet(settings: Settings, seconds: float, timeout: float) -> None:
    """Until the sink has taken nothing new for ``seconds`` (it has read what the worker sent)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() - since < seconds:
        seen = sink_status(settings).get("points_in", 0)
        if seen != last:
            last, since = seen, time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError("the sink kept receiving points")
        await asyncio.sleep(0.5)


def forget_points(target: InfluxTarget, start: datetime, stop: datetime) -> None:
    """Delete the golden series' energy and emissions points between ``start`` and ``stop``
    (with a token that may write the buckets: InfluxDB's delete asks for write)."""
    tags = " AND ".join(f'{k}="{v}"' for k, v in sorted(SERIES.items()))
    with InfluxDBClient(url=target.url, token=target.token, org=target.org) as client:
        for bucket in {bucket_for_window(w, target) for w in ("1m", "1h")}:
            for measurement in ("energy_consumed_kwh", "emissions_kgco2e"):
                client.delete_api().delete(
                    start,
                    stop,
                    f'_measurement="{measurement}" AND {tags}',
                    bucket=bucket,
                    org=target.org,
                )


async def test_points_survive_an_influxdb_outage_and_a_sink_restart(
    settings: Settings,
    kafka_admin: KafkaAccess,
    stack_config: StackConfig,
    influx_target: InfluxTarget,
    influx_write_target: InfluxTarget,
    fresh_partition: None,
    worker: Path,
    tmp_path: Path,
) -> None:
    rng = random.Random()
    # Within the 1-minute bucket's 30-day retention: InfluxDB refuses older points there.
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=rng.randint(2, 25)
    )
    hour = day + timedelta(hours=rng.randint(0, 19))
    run = uuid.uuid4().hex[:8]
    ends = [hour + timedelta(minutes=5 * (i + 1)) for i in range(36)]
    wh = [100 + 7 * i for i in range(36)]
    records = [reading(f"{run}-{i}", end, w) for i, (end, w) in enumerate(zip(ends, wh, strict=True))]
    closer = reading(f"{run}-closer", hour + timedelta(hours=4, minutes=2.5), 1)
    # An earlier run on the same random day left points of this series (its closer's minute
    # fell inside this run's hours once, in CI): what is compared below must be this run's.
    forget_points(influx_write_target, hour - timedelta(hours=1), hour + timedelta(hours=6))

    # A sink of its own, reading from the current end of zc.indicators: the backlog other
    # modules left (hundreds of thousands of updates) is not this test's.
    group = f"zc-test-outage-{run}"
    await start_group_at_end(kafka_admin, group, [INDICATOR_TOPIC])
    env = {
        "ZC_SINK_MEMORY_LIMIT_BYTES": str(MEMORY_LIMIT),
        "ZC_SINK_SPOOL_DIR": str(tmp_path / "spool"),
        "ZC_SINK_GROUP": group,
    }
    influx = next(s for s in control.services(stack_config) if s.name == "influxdb")
    log = tmp_path / "sink.log"
    # Its principal may read that group for the test's time (its ACLs name the configured one).
    await grant(settings, SINK_PRINCIPAL, sink_acls(group))
    first = start_service(["sink"], log, env)
    second = None
    try:
        # The status file is shared by name: wait for this sink's own (an earlier module's
        # sink left its figures there).
        await wait_until("the sink's status", lambda: sink_status(settings).get("pid") == first.pid, 30)
        written_before = sink_status(settings).get("points_written", 0)
        await send(kafka_admin, records[:12])
        await wait_until(
            "a first write", lambda: sink_status(settings).get("points_written", 0) > written_before, 60
        )

        assert influx.stop()
        outage_began = time.monotonic()
        await send(kafka_admin, [*records[12:], closer])
        await wait_until("a spill to disk", lambda: sink_status(settings).get("disk_segments", 0) > 0, 60)
        await wait_until_quiet(settings, seconds=4, timeout=60)
        before_kill = sink_status(settings)
        assert before_kill["influx_ok"] is False
        assert 0 < before_kill["peak_memory_bytes"] <= MEMORY_LIMIT
        assert before_kill["buffered_disk_points"] > 0

        first.send_signal(signal.SIGKILL)  # no goodbye: memory is lost, the disk must suffice
        first.wait()
        second = start_service(["sink"], log, env)
        await wait_until(
            "the restarted sink's status", lambda: sink_status(settings).get("pid") == second.pid, 30
        )
        assert sink_status(settings)["buffered_disk_points"] >= before_kill["buffered_disk_points"]

        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - outage_began)))
        influx.start()
        influx.wait_ready()
        await wait_until(
            "the buffers to drain",
            lambda: (
                (s := sink_status(settings)).get("influx_ok") is True
                and s["buffered_disk_points"] == 0
                and s["buffered_memory_points"] == 0
            ),
            120,
        )
        after = sink_status(settings)
        assert after["peak_memory_bytes"] <= MEMORY_LIMIT
    finally:
        if not influx.health().healthy:
            influx.start()
            influx.wait_ready()
        stop_child(first)
        if second is not None:
            stop_child(second)
        await withdraw(settings, SINK_PRINCIPAL, sink_acls(group))

    def stored(indicator: str, window: str) -> dict[datetime, tuple[float, bool]]:
        points = read_indicator(influx_target, indicator, window, SERIES, hour, hour + timedelta(hours=3))
        return {p.time: (round(p.value, 6), p.final) for p in points}

    minute = {end - timedelta(minutes=5): (round(w / 1000, 6), True) for end, w in zip(ends, wh, strict=True)}
    quarter = {
        hour + timedelta(minutes=15 * q): (round(sum(wh[3 * q : 3 * q + 3]) / 1000, 6), True)
        for q in range(12)
    }
    hourly = {hour + timedelta(hours=k): sum(wh[12 * k : 12 * k + 12]) / 1000 for k in range(3)}
    assert stored("energy_consumed_kwh", "1m") == minute
    assert stored("energy_consumed_kwh", "15m") == quarter
    assert stored("energy_consumed_kwh", "1h") == {t: (round(v, 6), True) for t, v in hourly.items()}
    assert stored("emissions_kgco2e", "1h") == {t: (round(v * FACTOR, 6), True) for t, v in hourly.items()}
