"""`zerocarbon up` keeps the platform running (issue 23): the real supervisord runs the worker,
a bridge, the sink and the operators' page; a worker SIGKILLed is back within seconds, `ps`
counts one restart, and the new worker reads what is published; `down --keep-stack` stops
every process it started (the session's stack runs on for the other tests).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import raw_topic
from sharing.pseudonyms import keys_at
from tests.energy_readings import energy_reading
from zerocarbon.demo import worker_counters
from zerocarbon.sharing_configs import pseudonym_key_file


def zerocarbon(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def ps() -> dict[str, dict[str, Any]]:
    done = zerocarbon("ps", timeout=60)
    return {row["name"]: row for row in json.loads(done.stdout)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def platform(settings: Settings) -> Iterator[dict[str, dict[str, Any]]]:
    # The suite's audit holds other tests' releases, each under a key file of its own: once a
    # platform has shared, the stage refuses to start without its key (sharing/key_history.py).
    keys_at(pseudonym_key_file(settings))
    started = zerocarbon("up")
    try:  # whatever happens, nothing supervised outlives the module
        assert started.returncode == 0, started.stderr[-3000:]
        lines = started.stdout.splitlines()  # the stack's progress, then the table
        first = max(i for i, line in enumerate(lines) if line in ("[", "[]"))
        yield {row["name"]: row for row in json.loads("\n".join(lines[first:]))}
    finally:
        pids = [row["pid"] for row in ps().values() if row["pid"]]
        stopped = zerocarbon("down", "--keep-stack")
        assert stopped.returncode == 0, stopped.stderr[-3000:]
        assert not [pid for pid in pids if _alive(pid)], "a supervised process outlived `down`"
        zerocarbon("bridge", "--forget-session", "--client-id", settings.bridge_client_id, timeout=60)


def test_up_runs_every_process_and_ps_says_so(platform: dict[str, dict[str, Any]]) -> None:
    assert set(platform) == {"worker", "bridge", "sink", "view", "share", "analyse"}
    table = ps()
    assert all(row["state"] == "RUNNING" and row["restarts"] == 0 for row in table.values()), table
    assert table["worker"]["health"] == "pass", table["worker"]
    # Each answers on the pages it registered: alive, and the bridge and the sink ready (connected
    # to their brokers and InfluxDB). The worker's readiness also asks to be caught up, which a
    # backlog left by earlier tests may delay: it must answer, pass or say what fails.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(table[n]["ready"] == "pass" for n in ("bridge", "sink")):
        time.sleep(1)
        table = ps()
    for name in ("bridge", "sink"):
        assert table[name]["health"] == "pass" and table[name]["ready"] == "pass", table[name]
    worker_ready = table["worker"]["ready"]
    assert worker_ready == "pass" or worker_ready.startswith("fail: "), table["worker"]
    assert table["view"]["health"] == "pass" and table["view"]["ready"] is None, table["view"]


async def test_a_worker_killed_is_back_within_seconds_counted_and_reading(
    platform: dict[str, dict[str, Any]], kafka_admin: KafkaAccess, settings: Settings
) -> None:
    killed = ps()["worker"]["pid"]
    os.kill(killed, signal.SIGKILL)
    t0 = time.monotonic()
    row: dict[str, Any] = {}
    while time.monotonic() - t0 < 90:
        row = ps()["worker"]
        if row["state"] == "RUNNING" and row["pid"] != killed and row["health"] == "pass":
            break
        await asyncio.sleep(1)
    back = time.monotonic() - t0
    assert row["state"] == "RUNNING" and row["pid"] != killed, row
    assert row["restarts"] == 1, row
    print(f"worker back and healthy {back:.1f} s after its SIGKILL")

    run = uuid.uuid4().hex[:8]
    producer = AIOKafkaProducer(**kafka_admin.client_options(), acks="all")
    await producer.start()
    try:
        now = datetime.now(UTC)
        for n in range(20):
            reading = energy_reading("enedis", f"{run}-{n}", now)
            await producer.send(raw_topic("energy"), json.dumps([reading]).encode(), key=b"17300")
        await producer.flush()
    finally:
        await producer.stop()
    received = 0
    for _ in range(60):
        received = worker_counters(settings)["received"]
        if received >= 20:
            break
        await asyncio.sleep(1)
    assert received >= 20, f"the restarted worker received {received} of the 20 readings"
