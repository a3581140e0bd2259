"""The simulated territory as one deterministic stream of MQTT messages, faults included.

Pure apart from its own state: the same fleet, start, seed and fault rates give the same
messages in the same order, whatever the wall clock (the pacing is ``pacing.py``'s job).
Every device reports at its kind's interval from a phase drawn from the seed; the stream
merges them in simulated-time order and applies the faults of ``faults.py``.

A run's event ids carry a tag of its seed and start: two runs of the same fleet with another
seed or start are other readings, and a validation that remembers event ids across its restarts
(or an hour) must not take one run's readings for another's resends; the same seed and start
give the same messages, ids included, so publishing them again is resending them.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

from schemas.device_topics import device_topic
from sensors import faults
from sensors.energy_devices import ElectricityMeter, GasMeter, HeatMeter, PvInverter
from sensors.environment_devices import AirQualityStation, IndoorCo2Sensor, WeatherStation
from sensors.fleet import DeviceSpec
from sensors.load_shapes import local_clock
from sensors.mobility_devices import (
    Bike,
    BikeStation,
    Bus,
    CarPark,
    CarsharingCar,
    ChargingPoint,
    SeaBus,
    TrafficCounter,
)
from sensors.simulated_device import SimulatedDevice

MODELS: dict[str, Callable[[DeviceSpec, random.Random], SimulatedDevice]] = {
    "electricity_meter": ElectricityMeter,
    "gas_meter": GasMeter,
    "heat_meter": HeatMeter,
    "pv_inverter": PvInverter,
    "air_quality_station": AirQualityStation,
    "weather_station": WeatherStation,
    "indoor_co2_sensor": IndoorCo2Sensor,
    "bike_station": BikeStation,
    "bike": Bike,
    "bus": Bus,
    "sea_bus": SeaBus,
    "traffic_counter": TrafficCounter,
    "car_park": CarPark,
    "charging_point": ChargingPoint,
    "carsharing_car": CarsharingCar,
}


def run_tag(seed: int, start: float) -> str:
    """Six hex digits of the run's seed and start, for its event ids."""
    return hashlib.blake2b(f"{seed}:{start!r}".encode(), digest_size=3).hexdigest()


class Emission(NamedTuple):
    """One MQTT message: when (simulated) it is sent, where, what, and which faults it carries."""

    clock: float
    family: str
    topic: str
    payload: bytes
    faults: tuple[str, ...]


class _Device:
    """A device in the stream: its model and its fault state."""

    __slots__ = ("backlog", "held", "model", "offline_until", "skew", "tags", "topic")

    def __init__(self, model: SimulatedDevice, topic: str, skew: float) -> None:
        self.model = model
        self.topic = topic
        self.skew = skew
        self.tags: tuple[str, ...] = (faults.CLOCK_SKEW,) if skew else ()
        self.offline_until = 0.0
        self.backlog: list[tuple[bytes, tuple[str, ...]]] = []
        self.held: Emission | None = None  # an out-of-order reading, sent after the next one


class TerritoryStream(Iterator[Emission]):
    """Messages of ``fleet`` from simulated time ``start`` on, in the order devices send them."""

    def __init__(
        self,
        fleet: Sequence[DeviceSpec],
        start: float,
        seed: int,
        rates: faults.FaultRates = faults.FaultRates(),  # noqa: B008 - frozen, shared safely
        topic_root: str = "zc",
    ) -> None:
        values = random.Random(seed)
        tag = run_tag(seed, start)
        # Faults draw from their own generator: the same seed gives the same clean values
        # whatever the fault rates.
        self._faults = random.Random(f"faults:{seed}")
        self.rates = rates
        self.devices = []
        self._schedule: list[tuple[float, int]] = []
        for i, spec in enumerate(fleet):
            model = MODELS[spec.kind.device_type](spec, values)
            model.tag_run(tag)
            skewed = self._faults.random() < rates.clock_skew
            skew = faults.clock_skew_s(self._faults) if skewed else 0.0
            self.devices.append(
                _Device(model, device_topic(spec.commune, spec.family, spec.device_id, topic_root), skew)
            )
            phase = values.randrange(spec.kind.interval_s)
            self._schedule.append((start + phase + spec.kind.interval_s, i))
        heapq.heapify(self._schedule)
        self._values = values
        self._ready: deque[Emission] = deque()
        self._late: list[tuple[float, int, Emission]] = []
        self._late_seq = 0
        self.readings = 0  # scheduled readings taken so far (each gives one message or more)

    def __next__(self) -> Emission:
        while not self._ready:
            t, i = self._schedule[0]
            if self._late and self._late[0][0] <= t:
                release, _, emission = heapq.heappop(self._late)
                self._ready.append(emission._replace(clock=release))
                continue
            heapq.heapreplace(self._schedule, (t + self.devices[i].model.interval_s, i))
            self._take(i, t)
        return self._ready.popleft()

    def clock_skews(self) -> dict[str, float]:
        """The clock offset in seconds of each device whose clock is off, by MQTT topic."""
        return {device.topic: device.skew for device in self.devices if device.skew}

    def drain(self) -> list[Emission]:
        """Everything still held back (out of order, late, offline backlogs), to send before stopping."""
        out = list(self._ready)
        self._ready.clear()
        clock = max((e.clock for e in out), default=self._schedule[0][0])
        for device in self.devices:
            family = device.model.spec.family
            out.extend(Emission(clock, family, device.topic, p, tags) for p, tags in device.backlog)
            device.backlog.clear()
            if device.held is not None:
                out.append(device.held._replace(clock=clock))
                device.held = None
        out.extend(e._replace(clock=max(clock, release)) for release, _, e in sorted(self._late))
        self._late.clear()
        return out

    def _take(self, i: int, t: float) -> None:
        self.readings += 1
        device = self.devices[i]
        model = device.model
        family = model.spec.family
        rates, rng = self.rates, self._faults
        tags = device.tags
        if model.reports_index and rates.index_reset and rng.random() < rates.index_reset:
            model.reset_index()
            tags = (*tags, faults.INDEX_RESET)
        payload = model.payload(t, t + device.skew, local_clock(t), self._values)
        if device.offline_until > t:
            device.backlog.append((payload, (*tags, faults.OFFLINE_BACKLOG)))
            return
        if device.backlog:
            self._ready.extend(Emission(t, family, device.topic, p, tg) for p, tg in device.backlog)
            device.backlog.clear()
        if rates.offline and rng.random() < rates.offline:
            device.offline_until = t + faults.outage_s(rng)
            device.backlog.append((payload, (*tags, faults.OFFLINE_BACKLOG)))
            return
        u = rng.random()
        if u < rates.malformed:
            emission = Emission(
                t, family, device.topic, faults.spoil(json.loads(payload), rng), (*tags, faults.MALFORMED)
            )
            self._ready.append(emission)
        elif (u := u - rates.malformed) < rates.duplicate:
            raw = payload
            self._ready.append(Emission(t, family, device.topic, raw, tags))
            self._ready.append(Emission(t, family, device.topic, raw, (*tags, faults.DUPLICATE)))
        elif (u := u - rates.duplicate) < rates.out_of_order and device.held is None:
            device.held = Emission(t, family, device.topic, payload, (*tags, faults.OUT_OF_ORDER))
            return
        elif u - rates.out_of_order < rates.late:
            emission = Emission(t, family, device.topic, payload, (*tags, faults.LATE))
            self._late_seq += 1
            heapq.heappush(self._late, (t + faults.late_delay_s(rng), self._late_seq, emission))
        else:
            self._ready.append(Emission(t, family, device.topic, payload, tags))
        if device.held is not None:
            self._ready.append(device.held._replace(clock=t))
            device.held = None
