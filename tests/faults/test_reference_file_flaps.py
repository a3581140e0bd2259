"""A reference file removed, caught half-written, and emptied while the worker runs under load
(issue 19): the worker goes on with the last good version of the reference data, no agent
dies, the flush timer keeps publishing, and the reconciliation balances.

Each broken state lasts longer than the store's 5-second check, so the worker meets every
one: its log must say so, and zc.indicators must grow while it lasts.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from pathlib import Path

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import INDICATOR_TOPIC
from stack.stack_config import StackConfig
from streams.kafka_admin import topic_ends
from tests.faults.territory import Territory

READINGS = 60_000  # 30 s at 2 000 readings/s: longer than the three broken states
BROKEN_SECONDS = 6.0  # longer than the store's check interval (5 s)


def replace_with(path: Path, content: bytes) -> None:
    """``path`` holds ``content`` from one instant to the next (written aside, renamed): the
    worker sees the states this test means, never one of its own writes half done."""
    aside = path.with_name(path.name + ".writing")
    aside.write_bytes(content)
    os.replace(aside, path)


def cut_inside_a_last_field(path: Path) -> Callable[[], None]:
    """Half-written as a copy in progress leaves it: cut in the middle, inside the last field
    of a row, so that every row left still has all its fields. Returns the repair."""
    text = path.read_bytes()
    end = text.index(b"\n", len(text) // 2)
    replace_with(path, text[: end - 2])
    return lambda: replace_with(path, text)


def removed(path: Path) -> Callable[[], None]:
    """Gone, as during a deploy that deletes before it copies; put back as it was (same
    modification time: the store has nothing to reload)."""
    away = path.with_name(path.name + ".away")
    os.replace(path, away)
    return lambda: os.replace(away, path)


def emptied(path: Path) -> Callable[[], None]:
    """Truncated to nothing, as ``open(path, "w")`` leaves it before the first write."""
    text = path.read_bytes()
    replace_with(path, b"")
    return lambda: replace_with(path, text)


async def test_a_reference_file_that_flaps_under_load_loses_nothing(
    settings: Settings, kafka_admin: KafkaAccess, stack_config: StackConfig, tmp_path: Path
) -> None:
    async with Territory(settings, kafka_admin, stack_config, tmp_path) as territory:
        log_start = territory.worker.log.stat().st_size
        load = await territory.start_load(count=READINGS)
        await territory.wait_raw_records(200)
        flaps = [
            ("devices.csv", removed),
            ("devices.csv", cut_inside_a_last_field),
            ("emission_factors.csv", emptied),
            ("plausibility.toml", cut_inside_a_last_field),
        ]
        published: list[int] = []
        for name, breaking in flaps:
            before = sum((await topic_ends(kafka_admin, [INDICATOR_TOPIC])).values())
            repair = breaking(territory.registry / name)
            await asyncio.sleep(BROKEN_SECONDS)
            published.append(sum((await topic_ends(kafka_admin, [INDICATOR_TOPIC])).values()) - before)
            repair()
            assert not load.done, "the load ended before the last flap: raise READINGS"
        report = await load.finished()
        await territory.reconcile(report)
        assert territory.worker.running and territory.worker.restarts == 0
        log = territory.worker.log.read_bytes()[log_start:].decode(errors="replace")

    # The worker met each broken state, and said so once each, and published meanwhile.
    refused = re.findall(r"reference data could not be reloaded \((\w+): [^\n]*?(\w+\.(?:csv|toml))", log)
    assert [name for _, name in refused] == [name for name, _ in flaps], refused
    assert all(n > 0 for n in published), (
        f"indicator updates published while each file was broken: {published}"
    )
    crashes = [line for line in log.splitlines() if re.search(r"Traceback|crashed|CRITICAL", line)]
    assert not crashes, crashes[:10]
