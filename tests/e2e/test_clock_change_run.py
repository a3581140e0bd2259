"""A simulated territory's energy meters across October's clock change, through the bridge and
a worker whose indicator state starts afresh: each series' total of the 25-hour local day is
the consumption its published readings carry, computed from the typed topic with the zone
database (tests/e2e/fault_expectations.py, the fault reconciliation's rules), and the day has
25 hourly windows whose sum is the day's.

The run starts an hour before the local midnight of the latest 25-hour day at least two days
old and simulates 30 hours in about 30 seconds (an hour of device time a second).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import DEAD_LETTER_TOPIC, INDICATOR_TOPIC, valid_topic
from schemas.dead_letter import DeadLetter
from schemas.families import FAMILIES
from schemas.local_calendar import ZoneCalendar
from streams.kafka_admin import records_after, topic_ends
from tests.e2e.fault_expectations import expected_indicator_stage, typed_events
from tests.e2e.simulated_runs import (
    forget_bridge,
    fresh_worker,
    no_factor_ids,
    outcomes_of,
    quiet,
    settled,
    wait_until,
)
from tests.simulate_command import simulate
from zerocarbon.processes import spawn_command, stop_child, wait_ready

DEVICES = ("--devices", "60", "--mix", "energy=1")
Series = tuple[str, str, str]  # commune, sector, carrier


def latest_long_day(calendar: ZoneCalendar, before: datetime) -> tuple[int, int]:
    """The bounds of the latest local day of 25 hours that ends before ``before``."""
    start, _ = calendar.day(int(before.timestamp()))
    for _ in range(800):
        start, end = calendar.day(start - 1)
        if end - start == 25 * 3600:
            return start, end
    raise AssertionError(f"{calendar.name} has no 25-hour day in the two years before {before}")


async def test_the_25_hour_day_totals_what_the_published_readings_carry(
    settings: Settings, kafka_admin: KafkaAccess, tmp_path: Path
) -> None:
    calendar = ZoneCalendar(settings.time_zone)
    day_start, day_end = latest_long_day(calendar, datetime.now(UTC) - timedelta(days=2))
    registry = tmp_path / "reference"
    simulate(*DEVICES, "--write-registry", str(registry))
    bridge_id = f"zc-e2e-clock-{uuid.uuid4().hex[:8]}"
    worker = await fresh_worker(kafka_admin, settings, tmp_path / "worker.log", registry)
    bridge = spawn_command(["bridge", "--client-id", bridge_id], tmp_path / "bridge.log")
    try:
        wait_ready(bridge, tmp_path / "bridge.log")
        before = await quiet(settings)
        topics = [*(valid_topic(name) for name in FAMILIES), INDICATOR_TOPIC, DEAD_LETTER_TOPIC]
        starts = await topic_ends(kafka_admin, topics)
        first = datetime.fromtimestamp(day_start - 3600, UTC)
        report = await asyncio.to_thread(
            simulate, *DEVICES, "--start", first.isoformat(), "--speedup", "3600", "--duration", "30",
            "--rate", "0", "--seed", str(uuid.uuid4().int % (1 << 30)),
        )  # fmt: skip
        accepted = report["expected_at_validation"]["accepted"]
        await wait_until(settings, lambda c: outcomes_of(c) >= outcomes_of(before) + accepted, timeout=120)
        await settled(kafka_admin, [INDICATOR_TOPIC])  # the flush publishes every second
        written = await records_after(kafka_admin, starts)
    finally:
        stop_child(bridge)
        stop_child(worker)
        forget_bridge(bridge_id)

    typed = typed_events(written, settings.kafka_partitions)
    assert len(typed) == accepted, (len(typed), report["expected_at_validation"])
    letters = [
        DeadLetter.model_validate_json(value) for topic, value in written if topic == DEAD_LETTER_TOPIC
    ]
    no_factor = no_factor_ids(letters)
    stage = expected_indicator_stage(typed, no_factor, settings.indicator_grace_seconds, registry, calendar)
    expected = {s[:3]: kwh for s, kwh in stage.consumed_kwh_by_day.items() if s[3] == day_start}
    daily: dict[Series, float] = {}
    final: dict[Series, bool] = {}
    hourly: defaultdict[Series, dict[int, float]] = defaultdict(dict)
    for topic, value in written:
        u = json.loads(value) if topic == INDICATOR_TOPIC else None
        if u is None or u["indicator"] != "energy_consumed_kwh":
            continue
        series = (u["dimensions"]["commune"], u["dimensions"]["sector"], u["dimensions"]["carrier"])
        start = int(datetime.fromisoformat(u["window_start"]).timestamp())
        if u["window"] == "1d" and start == day_start:
            daily[series], final[series] = (
                u["value"],
                u["final"],
            )  # the latest wins, as on the compacted topic
        elif u["window"] == "1h" and day_start <= start < day_end:
            hourly[series][start] = u["value"]

    assert len(expected) >= 10, f"too few series counted on the day: {expected}"
    wrong = {
        s: (daily.get(s), round(kwh, 6))
        for s, kwh in expected.items()
        if s not in daily or abs(daily[s] - kwh) > 1e-6 * max(1.0, kwh)
    }
    assert not wrong, (
        f"{len(wrong)} of {len(expected)} series' local day differ (published, readings): {wrong}"
    )
    assert all(final.values()), f"the day never closed for {[s for s, f in final.items() if not f]}"
    hours = {start for windows in hourly.values() for start in windows}
    assert len(hours) == 25, sorted(datetime.fromtimestamp(h, UTC).isoformat() for h in hours)
    for s, windows in hourly.items():
        day = daily.get(s, 0.0)
        assert abs(sum(windows.values()) - day) <= 1e-6 * max(1.0, day), (s, windows, day)
