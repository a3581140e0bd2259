"""`zerocarbon simulate`'s shell: build the fleet, pace the territory stream, publish, report.

Everything decided here is about the wall clock and the broker; what is sent is decided by
``TerritoryStream`` (deterministic for a seed and a start time).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from reference.loader import ReferenceData
from sensors.faults import FaultRates
from sensors.fleet import DEFAULT_MIX, DeviceSpec, build_fleet
from sensors.mqtt_publishers import MqttTarget, open_publisher
from sensors.pacing import paced
from sensors.send_tally import FaultInstances, SendTally
from sensors.territory_stream import Emission, TerritoryStream

ASSUMED_FAST_RATE = 50_000.0  # readings/s assumed when nothing paces the run, to place its start


@dataclass(frozen=True)
class SimulationPlan:
    """What to simulate and how fast; ``count`` and ``duration`` may both bound the run."""

    devices: int = 1000
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    seed: int = 1
    rate: float | None = 100.0
    speedup: float | None = None
    duration: float | None = None
    count: int | None = None
    start: float | None = None  # simulated start, UTC epoch seconds; None: chosen to end now
    topic_root: str = "zc"
    faults: FaultRates = field(default_factory=FaultRates)
    publisher: str = "auto"  # auto | paho | socket

    def __post_init__(self) -> None:
        if self.duration is None and self.count is None:
            raise ValueError("give a duration or a count, or the simulation never ends")


def readings_per_simulated_second(fleet: Iterable[DeviceSpec]) -> float:
    return sum(1.0 / spec.kind.interval_s for spec in fleet)


def default_start(plan: SimulationPlan, fleet: list[DeviceSpec], now: float) -> float:
    """The simulated start that makes the run end about now, so no reading is in the future.

    Validation refuses times more than 5 minutes ahead of its clock: a simulation that runs
    faster than real time must therefore start in the past.
    """
    per_sim_second = readings_per_simulated_second(fleet)
    longest = max(spec.kind.interval_s for spec in fleet)
    if plan.speedup is not None:
        wall = (
            plan.duration if plan.duration is not None else (plan.count or 0) / per_sim_second / plan.speedup
        )
        # Simulated time meets the wall clock at the end, and is behind it before.
        return now - (plan.speedup - 1) * wall
    readings = plan.count
    if readings is None:
        assert plan.duration is not None
        readings = int(plan.duration * (plan.rate or ASSUMED_FAST_RATE))
    return now - readings / per_sim_second - longest


def run_simulation(
    plan: SimulationPlan, reference: ReferenceData, target: MqttTarget, events_file: Path | None = None
) -> dict[str, Any]:
    """Publish the simulated territory as planned; the report of what was sent.

    With ``events_file``, also write there which messages carry which fault (``FaultInstances``),
    for a fault-by-fault reconciliation; without, the publish loop does no per-message work for it.
    """
    fleet = build_fleet(plan.devices, list(reference.communes.values()), plan.mix)
    start = plan.start if plan.start is not None else default_start(plan, fleet, time.time())
    stream = TerritoryStream(fleet, start, plan.seed, plan.faults, plan.topic_root)
    emissions: Iterable[Emission] = stream if plan.count is None else islice(stream, plan.count)
    publisher = open_publisher(plan.publisher, plan.rate, target)
    tally = SendTally()
    instances = FaultInstances(stream.clock_skews()) if events_file is not None else None
    wall0 = time.monotonic()
    last_clock = start
    try:
        batches = paced(
            emissions, lambda e: e.clock, speed=plan.speedup, rate=plan.rate, duration=plan.duration
        )
        for batch in batches:
            publisher.publish_many((e.topic, e.payload) for e in batch)
            for e in batch:
                tally.count(e.family, e.faults)
            if instances is not None:
                instances.add(batch)
            last_clock = batch[-1].clock
        # What devices still hold (late, out-of-order, offline backlogs) is sent before stopping,
        # so that every reading counted in the report was published.
        rest = stream.drain()
        publisher.publish_many((e.topic, e.payload) for e in rest)
        for e in rest:
            tally.count(e.family, e.faults)
        if instances is not None:
            instances.add(rest)
        publish_seconds = time.monotonic() - wall0
        acknowledged = publisher.wait_acknowledged()
    finally:
        publisher.close()
    wall = time.monotonic() - wall0
    run = {
        "topic_root": plan.topic_root,
        "seed": plan.seed,
        "devices": len(fleet),
        "devices_per_family": _per_family(fleet),
        "fault_rates": plan.faults.as_dict(),
        "simulated_start": _iso(start),
        "simulated_end": _iso(last_clock),
    }
    if instances is not None and events_file is not None:
        events_file.write_text(json.dumps({**run, **instances.report()}) + "\n")
        run["report_events"] = str(events_file)
    return {
        **run,
        "readings": stream.readings,
        **tally.report(),
        "acknowledged": acknowledged,
        # Answered with a refusal: the credential may not publish there (docs/security.md).
        "refused": publisher.refused,
        "publisher": type(publisher).__name__,
        "publish_seconds": round(publish_seconds, 3),
        "wall_seconds": round(wall, 3),
        "messages_per_second": round(tally.total / publish_seconds, 1) if publish_seconds > 0 else None,
    }


def _per_family(fleet: list[DeviceSpec]) -> dict[str, int]:
    out: dict[str, int] = {}
    for spec in fleet:
        out[spec.family] = out.get(spec.family, 0) + 1
    return out


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
