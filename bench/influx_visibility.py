"""What InfluxDB shows of a run: the energy counted so far, and how many latency markers.

A reading is visible once the 1-day window of its series in InfluxDB includes it: the sum
of ``energy_consumed_kwh`` over every series' 1-day points is the energy of every reading
counted and written (each point is the window's latest total; a rewrite replaces it), and
the same sum for the marker series (the only series in sector ``agriculture``) is the
number of markers visible, 1 kWh each. Readings of one meter stay in order from MQTT to
InfluxDB, so "n markers visible" means markers 0..n-1. A background thread polls both in
one Flux query, every ``interval`` seconds, and keeps (instant, total, markers).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from energy_workload import MARKER
from influxdb_client import InfluxDBClient
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError

from config.settings import Settings


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # time.time() when the answer came back
    total_kwh: float
    markers: int


def _query(bucket: str) -> str:
    return f"""
from(bucket: "{bucket}") |> range(start: 0)
  |> filter(fn: (r) => r._measurement == "energy_consumed_kwh" and r._field == "value" and r.window == "1d")
  |> group(columns: ["sector"]) |> sum()
"""


def read_counted(client: InfluxDBClient, bucket: str) -> tuple[float, int]:
    """(kWh counted in every series, markers counted) as InfluxDB holds them now."""
    total, markers = 0.0, 0.0
    for table in client.query_api().query(_query(bucket)):
        for record in table.records:
            value = float(record.get_value() or 0.0)
            total += value
            if record["sector"] == MARKER.sector:
                markers += value
    return total, round(markers)


@dataclass
class VisibilityPoller:
    """Polls ``read_counted`` in a thread until stopped; ``samples`` in order."""

    settings: Settings
    bucket: str
    interval: float = 0.1
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> VisibilityPoller:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        s = self.settings
        with InfluxDBClient(
            url=s.influx_url, token=s.influx_token.get_secret_value(), org=s.influx_org
        ) as client:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    total, markers = read_counted(client, self.bucket)
                except (ApiException, OSError, HTTPError) as exc:
                    # 404 until the sink creates the bucket, a 500 while its shards are being
                    # created: no sample this time; a run that never becomes visible times out.
                    self.errors.append(f"{type(exc).__name__}: {getattr(exc, 'status', '')} {exc}"[:300])
                else:
                    self.samples.append(Sample(time.time(), total, markers))
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def wait_for(self, total_kwh: float, timeout: float) -> Sample | None:
        """The first sample showing at least ``total_kwh``, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for sample in reversed(self.samples):
                if sample.total_kwh >= total_kwh - 1e-6:
                    return next(s for s in self.samples if s.total_kwh >= total_kwh - 1e-6)
                break
            time.sleep(self.interval / 2)
        return None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


def marker_latencies(samples: list[Sample], published: list[float], first_marker: int) -> list[float]:
    """Seconds from each marker's publish to the first sample that shows it (an upper bound,
    within one polling interval plus the query's own time); markers never seen are left out."""
    out: list[float] = []
    i = 0
    for j, at in enumerate(published):
        needed = first_marker + j + 1
        while i < len(samples) and (samples[i].markers < needed or samples[i].at < at):
            i += 1
        if i == len(samples):
            break
        out.append(samples[i].at - at)
    return out
