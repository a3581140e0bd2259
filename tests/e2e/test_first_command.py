"""The README's first command, `make demo`, run as a newcomer runs it, its figures read back.

It runs against the suite's isolated stack (tests/conftest.py): the same command, other ports.
What it prints must be what InfluxDB holds once it has stopped: every smoke reading of its
table, and today's emissions of every commune it lists.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from influxdb_client import InfluxDBClient

from config.settings import Settings

REPO = Path(__file__).resolve().parents[2]
README_COMMAND = ["make", "demo"]

SMOKE_ROW = re.compile(r"^(demo-[0-9a-f]{8}-meter\d)\s+(\S+)\s+(-?\d+\.\d{2})$", re.M)
RETURNED = re.compile(r"^\[demo\] InfluxDB returned (\d+)/(\d+) readings via Flux", re.M)
COMMUNE_ROW = re.compile(r"^\[demo\]\s+(\d{5})\s+(-?\d+\.\d)\s+(\S+)$", re.M)


def _query(settings: Settings, flux: str) -> list[dict[str, object]]:
    with InfluxDBClient(
        url=settings.influx_url, token=settings.influx_token.get_secret_value(), org=settings.influx_org
    ) as client:
        return [record.values for table in client.query_api().query(flux) for record in table.records]


def _smoke_readings(settings: Settings, run_prefix: str) -> dict[tuple[str, datetime], float]:
    flux = f'''import "strings"
from(bucket: "{settings.influx_bucket}") |> range(start: -2h)
  |> filter(fn: (r) => r._measurement == "{settings.smoke_measurement}" and r._field == "value")
  |> filter(fn: (r) => strings.hasPrefix(v: r.device_id, prefix: "{run_prefix}"))'''
    return {(str(r["device_id"]), r["_time"]): float(r["_value"]) for r in _query(settings, flux)}


def _emissions_today(settings: Settings) -> dict[str, float]:
    """Each commune's emissions in today's 1-day windows, summed over its series."""
    day = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")
    flux = f'''from(bucket: "{settings.influx_bucket}") |> range(start: {day})
  |> filter(fn: (r) => r._measurement == "emissions_kgco2e" and r.window == "1d" and r._field == "value")
  |> group(columns: ["commune"]) |> sum()'''
    return {str(r["commune"]): float(r["_value"]) for r in _query(settings, flux)}


def test_make_demo_prints_what_influxdb_holds(settings: Settings) -> None:
    done = subprocess.run(README_COMMAND, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    out = done.stdout
    assert done.returncode == 0, (
        f"`make demo` failed ({done.returncode}):\n{out[-4000:]}\n{done.stderr[-4000:]}"
    )

    returned = RETURNED.search(out)
    assert returned and returned.group(1) == returned.group(2), out
    printed = SMOKE_ROW.findall(out)
    assert len(printed) == int(returned.group(1)) > 0, out
    run_prefix = printed[0][0].rsplit("-", 1)[0] + "-"
    stored = _smoke_readings(settings, run_prefix)
    assert len(stored) == len(printed)
    for device, time, value in printed:
        assert stored[(device, datetime.fromisoformat(time))] == float(value), (device, time)

    communes = COMMUNE_ROW.findall(out)
    assert len(communes) >= 10, out
    emissions = _emissions_today(settings)
    for commune, kg, _share in communes:
        # A commune with renewable production only has no emissions series: the demo prints 0.0.
        assert f"{emissions.get(commune, 0.0):.1f}" == kg, (commune, kg, emissions.get(commune))
