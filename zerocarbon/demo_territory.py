"""The demo's living territory: simulated devices in the 28 communes, through the service.

`make demo` shows first a meter's readings crossing every part, then this: a few
hundred devices (meters, PV, air stations, bikes, buses, car parks...) publishing for a few
seconds with some malformed payloads and duplicates, what validation made of them, and
today's emissions and renewable share per commune as InfluxDB holds them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from influxdb_client import InfluxDBClient

from config.settings import Settings
from reference.loader import load_reference
from schemas.local_calendar import Calendar
from schemas.mqtt_principals import GATEWAY
from sensors.faults import FaultRates
from sensors.fleet import DEFAULT_MIX, build_fleet
from sensors.fleet_registry import write_reference_dir
from sensors.mqtt_publishers import MqttTarget
from sensors.simulation_run import SimulationPlan, run_simulation
from zerocarbon.component_configs import influx_read_target, mqtt_ca_file, mqtt_login, reference_dir

DEVICES = 400
RATE = 2000.0  # readings/s
SECONDS = 5.0


def registry_for_demo(settings: Settings, folder: Path) -> Path:
    """A reference folder with the demo fleet in its device registry (for the worker)."""
    source = reference_dir(settings)
    fleet = build_fleet(DEVICES, list(load_reference(source).communes.values()), dict(DEFAULT_MIX))
    return write_reference_dir(fleet, source, folder)


def simulate_territory(settings: Settings, seed: int) -> dict[str, Any]:
    """Publish the demo fleet's readings for a few seconds; the simulator's report."""
    plan = SimulationPlan(
        devices=DEVICES,
        seed=seed,
        rate=RATE,
        duration=SECONDS,
        faults=FaultRates(malformed=0.01, duplicate=0.01, late=0.01),
    )
    gateway = mqtt_login(settings, GATEWAY)  # publishes for the whole fleet
    return run_simulation(
        plan,
        load_reference(reference_dir(settings)),
        MqttTarget(
            settings.mqtt_host,
            settings.mqtt_port,
            gateway.username,
            gateway.password,
            ca_file=mqtt_ca_file(settings),
        ),
    )


def wait_until_counted(
    counters: Callable[[], dict[str, Any]], before: int, messages: int, timeout: float
) -> dict[str, Any]:
    """The worker's validation counters once ``messages`` more events are accounted for."""
    deadline = time.monotonic() + timeout
    now = counters()
    while time.monotonic() < deadline and now["received"] - before < messages:
        time.sleep(0.5)
        now = counters()
    return now


STABLE_READS = 3


def first_day(report: dict[str, Any], calendar: Calendar) -> datetime:
    """The start of the local day (``calendar``'s, the worker's) of the simulation's first
    reading: the simulator starts in the past so that its run ends now, so just after midnight
    most readings are yesterday's."""
    start = datetime.fromisoformat(str(report["simulated_start"]))
    return datetime.fromtimestamp(calendar.day(int(start.timestamp()))[0], UTC)


def today_by_commune(
    settings: Settings, timeout: float, since: datetime
) -> list[tuple[str, float, float | None]]:
    """(commune, emissions kgCO2e, renewable share) of the 1-day windows from ``since`` (a day's
    start) to today, from InfluxDB, largest first."""
    target = influx_read_target(settings)
    day = since.astimezone(UTC).isoformat()
    query = f"""
from(bucket: "{target.bucket}")
  |> range(start: {day.replace("+00:00", "Z")})
  |> filter(fn: (r) => r.window == "1d" and r._field == "value")
  |> filter(fn: (r) => r._measurement == "emissions_kgco2e" or r._measurement == "renewable_share_ratio")
  |> group(columns: ["_measurement", "commune"])
  |> sum()
"""
    deadline = time.monotonic() + timeout
    rows: dict[str, dict[str, float]] = {}
    previous: dict[str, dict[str, float]] = {}
    unchanged = 0
    with InfluxDBClient(url=target.url, token=target.token, org=target.org) as client:
        # The figures printed are the final ones: the worker and the sink flush every second,
        # so three equal reads 1.5 s apart mean that the last updates have reached InfluxDB.
        while time.monotonic() < deadline:
            rows = {}
            for table in client.query_api().query(query):
                for record in table.records:
                    rows.setdefault(str(record["commune"]), {})[record.get_measurement()] = float(
                        record.get_value()
                    )
            unchanged = unchanged + 1 if rows == previous else 0
            if len(rows) >= 10 and unchanged >= STABLE_READS - 1:
                break
            previous = rows
            time.sleep(1.5)
    out = [(c, v.get("emissions_kgco2e", 0.0), v.get("renewable_share_ratio")) for c, v in rows.items()]
    return sorted(out, key=lambda row: -row[1])
