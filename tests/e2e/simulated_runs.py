"""Simulated runs through the real stack: `zerocarbon simulate` to completion, a worker whose
indicator state starts afresh, and waits on its counters and on Kafka (the e2e fault and
clock-change tests)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import raw_topic, valid_topic
from schemas.dead_letter import DeadLetter
from schemas.families import FAMILIES
from streams.kafka_admin import start_group_at_end, topic_ends
from tests.integration.golden_meters import forget_indicator_state
from tests.integration.worker_runs import start_worker
from zerocarbon.demo import worker_counters
from zerocarbon.processes import stop_child

# Where the indicator stage puts each typed event: every one ends in exactly one of these.
INDICATOR_OUTCOMES = (
    "counted", "late", "duplicate", "index_baselines", "index_reset", "index_out_of_order", "index_jump",
    "no_emission_factor",
)  # fmt: skip


def forget_bridge(bridge_id: str) -> None:
    """Drop a test bridge's persistent session: left behind, Mosquitto queues every later reading for it."""
    subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", "bridge", "--forget-session", "--client-id", bridge_id],
        capture_output=True,
        timeout=60,
    )


def no_factor_ids(letters: list[DeadLetter]) -> set[str]:
    """The event ids the indicator stage dead-lettered for want of an emission factor."""
    return {
        json.loads(letter.payload)["event_id"]
        for letter in letters
        if letter.stage == "indicators" and letter.errors[0].type == "no_emission_factor"
    }


def outcomes_of(counters: dict[str, Any]) -> int:
    """Typed events the indicator stage has dealt with, whatever the outcome."""
    return sum(counters["indicators"].get(name, 0) for name in INDICATOR_OUTCOMES)


async def wait_until(settings: Settings, reached: Any, timeout: float) -> dict[str, Any]:
    """The worker's counters once ``reached(counters)`` holds (or at the timeout)."""
    deadline = time.monotonic() + timeout
    counters = worker_counters(settings)
    while time.monotonic() < deadline and not reached(counters):
        await asyncio.sleep(0.5)
        counters = worker_counters(settings)
    return counters


async def quiet(settings: Settings) -> dict[str, Any]:
    """The worker's counters once it has received nothing new for two seconds."""
    counters = worker_counters(settings)
    while True:
        await asyncio.sleep(2)
        now = worker_counters(settings)
        if now["received"] == counters["received"]:
            return now
        counters = now


async def settled(kafka: KafkaAccess, topics: list[str], timeout: float = 30) -> None:
    """Until nothing more is written to ``topics`` for two seconds (or at the timeout)."""
    deadline = time.monotonic() + timeout
    ends = await topic_ends(kafka, topics)
    while time.monotonic() < deadline:
        await asyncio.sleep(2)
        now = await topic_ends(kafka, topics)
        if now == ends:
            return
        ends = now


async def fresh_worker(
    kafka: KafkaAccess, settings: Settings, log: Path, registry: Path
) -> subprocess.Popen[bytes]:
    """A worker whose indicator state is empty on every typed partition, so that windows close
    on this run's event times only; started again if a backlog reached that state first."""
    for _ in range(2):
        # An earlier run's raw or typed backlog (a benchmark, a demo) is not this test's input.
        for family in FAMILIES:
            for topic in (raw_topic(family), valid_topic(family)):
                await start_group_at_end(kafka, settings.worker_id, [topic])
        for family in FAMILIES:
            await forget_indicator_state(kafka, settings, range(settings.kafka_partitions), family)
        worker = start_worker(log, {"ZC_REFERENCE_DIR": str(registry)})
        counters = await quiet(settings)
        if not outcomes_of(counters):
            return worker
        stop_child(worker)  # an earlier run's raw backlog is now consumed: forget it too
    raise AssertionError(f"a backlog keeps reaching the typed topics; worker log {log}")
