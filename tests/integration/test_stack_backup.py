"""The platform's home copied after `zerocarbon down`, lost, and put back (issue 23).

docs/operations.md, "One consistent copy": `zerocarbon down` checkpoints every partition,
commits the store of closed windows and stops the stack; a copy of ``ZC_STACK_HOME`` taken
then, put back after the home is lost, gives a platform that counts every reading once. Here
a platform of its own (tests/separate_stack.py) runs under `zerocarbon up`; a golden meter's
first hour reaches InfluxDB; the platform is stopped, its home copied, deleted and restored;
`zerocarbon up` again, and the meter's next readings complete the same windows. Both hours
must hold exactly what the meter sent: a restore that lost the worker's checkpoint, its
store or its group's offsets would count the first readings twice or not at all.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from config.settings import Settings
from schemas import kafka_principals
from sinks.influx_readback import read_indicator
from tests.integration.golden_meters import RESIDENTIAL, IntervalSeries, produce_raw
from tests.separate_stack import separate_stack
from tests.waiting import until
from zerocarbon import component_configs

READINGS = 8  # quarter hours: two hours of the golden meter, the first before the copy
QUARTER = timedelta(minutes=15)


def zerocarbon(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", *args], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"zerocarbon {' '.join(args)}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"


def hours(settings: Settings, start: datetime) -> list[tuple[datetime, float, bool]]:
    stored = read_indicator(
        component_configs.influx_read_target(settings), "energy_consumed_kwh", "1h",
        RESIDENTIAL.series, start, start + READINGS * QUARTER,
    )  # fmt: skip
    return [(s.time, round(s.value, 6), s.final) for s in stored]


async def test_a_home_copied_after_down_and_put_back_counts_every_reading_once(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    base = tmp_path_factory.mktemp("backup")
    home, copy = base / "home", base / "copy"
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    series = IntervalSeries(
        RESIDENTIAL, f"backup-{uuid.uuid4().hex[:8]}", start, QUARTER, lambda k: 100 * (k + 1)
    )
    expected = [
        (datetime.fromtimestamp(hour, UTC), kwh, True)
        for hour, kwh in sorted(series.hourly_kwh(READINGS).items())
    ]
    first_hour = sum(100 * (k + 1) for k in range(4)) / 1000
    with separate_stack(home) as settings:
        admin = component_configs.kafka_access  # read the admin's login again after the restore
        try:
            zerocarbon("up")
            await produce_raw(admin(settings, kafka_principals.ADMIN), RESIDENTIAL, series.records(range(4)))
            await until(
                "the first hour in InfluxDB",
                lambda: [(t, v) for t, v, _ in hours(settings, start)] == [(start, first_hour)],
                120,
            )
            zerocarbon("down")
            shutil.copytree(home, copy, symlinks=True)
            shutil.rmtree(home)
            shutil.copytree(copy, home, symlinks=True)
            zerocarbon("up")
            rest = series.records(range(4, READINGS)) + series.closer(READINGS)
            await produce_raw(admin(settings, kafka_principals.ADMIN), RESIDENTIAL, rest)
            await until("both hours final", lambda: hours(settings, start) == expected, 180)
        finally:
            zerocarbon("down")
