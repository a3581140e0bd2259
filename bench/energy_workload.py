"""The suite's workload: energy meters in the 28 communes, the same readings at every stage.

Every stage of the suite sees the same readings in the form that stage receives: MQTT
messages (device topic, JSON payload) for Mosquitto, the bridge and the end-to-end runs;
bridge records (frames of those messages, one record per raw partition) for the Kafka
limits; validated records (the validation stage's canonical JSON arrays, one per commune
partition) for enrichment and aggregation, our worker and the peers. A reading is an
interval reading of a whole number of kWh over 10 minutes, so the sums InfluxDB ends up with
are exact and the end-to-end runs know when everything arrived.

The series are commune x sector x carrier (10 sector/carrier pairs with an emission factor,
280 series); 4 meters per series. One more meter, in a series no other meter uses, sends
the end-to-end runs' latency markers (``MARKER``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reference.loader import DEFAULT_DIR, load_reference
from schemas.batch_envelope import CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE, encode_frames
from schemas.catalogue import raw_topic
from schemas.device_topics import device_topic
from schemas.partition_key import commune_partition
from sensors.fleet import DeviceKind, DeviceSpec
from sensors.fleet_registry import write_reference_dir
from streams.validation.deduplication import RecentEventIds
from streams.validation.engine import ValidationEngine
from streams.validation.raw_records import RawRecord
from streams.validation.stage import ValidationCounters

PRODUCER = "bench"
INTERVAL_SECONDS = 600
METERS_PER_SERIES = 4
SECTOR_CARRIERS: tuple[tuple[str, str], ...] = (
    ("residential", "electricity"),
    ("tertiary", "electricity"),
    ("public", "electricity"),
    ("industry", "electricity"),
    ("residential", "natural_gas"),
    ("tertiary", "natural_gas"),
    ("public", "heat_network"),
    ("tertiary", "heat_network"),
    ("residential", "heating_oil"),
    ("industry", "heating_oil"),
)
BENCH_METER = DeviceKind("energy_meter", "energy", "bench", PRODUCER, INTERVAL_SECONDS, 1.0)
Message = tuple[str, bytes]  # MQTT topic, payload
Record = tuple[int, bytes]  # Kafka partition, value


@dataclass(frozen=True, slots=True)
class Meter:
    meter_id: str
    commune: str
    sector: str
    carrier: str

    @property
    def topic(self) -> str:
        return device_topic(self.commune, "energy", self.meter_id)


# The latency markers' series (agriculture: no load meter is in that sector).
MARKER = Meter("bench-marker-17300", "17300", "agriculture", "electricity")


def iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat()


class EnergyWorkload:
    """The meters, and reading ``k`` of any run: meter ``k mod meters``, ``1 + k mod 3`` kWh."""

    def __init__(self, communes: Sequence[str], partitions: int) -> None:
        self.partitions = partitions
        self.communes = list(communes)
        # Commune first, so consecutive readings spread over the communes and partitions.
        self.meters = [
            Meter(f"bench-{commune}-{pair}-{n}", commune, sector, carrier)
            for n in range(METERS_PER_SERIES)
            for pair, (sector, carrier) in enumerate(SECTOR_CARRIERS)
            for commune in communes
        ]
        self._heads = [self._head(m) for m in self.meters]
        self._marker_head = self._head(MARKER)
        self.partition_of = {m.commune: commune_partition(m.commune, partitions) for m in self.meters}

    @staticmethod
    def _head(meter: Meter) -> tuple[str, str]:
        # The fixed parts of a meter's payload, so that building one is a single format.
        return meter.topic, (
            f'"meter_id":"{meter.meter_id}","commune":"{meter.commune}","sector":"{meter.sector}",'
            f'"carrier":"{meter.carrier}","unit":"kWh","kind":"interval"'
        )

    def meter(self, k: int) -> Meter:
        return self.meters[k % len(self.meters)]

    @staticmethod
    def kwh(k: int) -> int:
        return 1 + k % 3

    def expected_kwh(self, count: int) -> int:
        """Energy of readings 0..count-1, in kWh (exact)."""
        return sum(self.kwh(k) for k in range(count))

    def message(self, run: str, k: int, event_time: str, interval_start: str) -> Message:
        topic, head = self._heads[k % len(self._heads)]
        payload = (
            f'{{"event_id":"{run}-{k}","producer_id":"{PRODUCER}","event_time":"{event_time}",{head},'
            f'"quantity":{1 + k % 3},"interval_start":"{interval_start}"}}'
        )
        return topic, payload.encode()

    def marker(self, run: str, j: int, event_time: str, interval_start: str) -> Message:
        """Latency marker ``j``: 1 kWh in the marker series (so the series' total counts them)."""
        topic, head = self._marker_head
        payload = (
            f'{{"event_id":"{run}-marker-{j}","producer_id":"{PRODUCER}","event_time":"{event_time}",'
            f'{head},"quantity":1,"interval_start":"{interval_start}"}}'
        )
        return topic, payload.encode()

    def laid_out(self, run: str, count: int, start: float, per_second: float) -> Iterator[Message]:
        """Readings 0..count-1 with event times from ``start``, ``per_second`` of them per
        second of event time (how dense a live stream at that rate would be)."""
        for k in range(count):
            at = start + k / per_second
            yield self.message(run, k, iso(at), iso(at - INTERVAL_SECONDS))

    def closers(self, run: str, at: float) -> list[Message]:
        """One reading per series at ``at``: in every partition, every window ending ``grace``
        before closes (our worker and Quix close on the partition's watermark; the naive
        baseline closes a series' window only when that series moves on)."""
        first_of: dict[tuple[str, str, str], int] = {}
        for k, meter in enumerate(self.meters):
            first_of.setdefault((meter.commune, meter.sector, meter.carrier), k)
        return [
            self.message(f"{run}-closer", k, iso(at), iso(at - INTERVAL_SECONDS)) for k in first_of.values()
        ]

    def registry(self, folder: Path, source: Path | None = None) -> Path:
        """A reference folder with the bench meters (and the marker) in its device registry."""
        fleet = [DeviceSpec(m.meter_id, BENCH_METER, m.commune, m.sector) for m in [*self.meters, MARKER]]
        return write_reference_dir(fleet, source or DEFAULT_DIR, folder)


def communes() -> list[str]:
    """The 28 communes' INSEE codes, in the reference file's order."""
    return list(load_reference().communes)


def commune_of(payload: bytes) -> str:
    return str(json.loads(payload)["commune"])


def partition_chunks(
    messages: Sequence[Message], workload: EnergyWorkload, per_record: int
) -> list[tuple[int, list[Message]]]:
    """The messages as the bridge packs them: per raw partition (the commune's), ``per_record``
    at most per record, records in the order their last message arrived."""
    pending: dict[int, list[Message]] = {}
    out: list[tuple[int, list[Message]]] = []
    for topic, payload in messages:
        partition = workload.partition_of[topic.split("/")[1]]
        chunk = pending.setdefault(partition, [])
        chunk.append((topic, payload))
        if len(chunk) == per_record:
            out.append((partition, chunk))
            pending[partition] = []
    out += [(partition, chunk) for partition, chunk in sorted(pending.items()) if chunk]
    return out


def bridge_records(chunks: Sequence[tuple[int, list[Message]]]) -> list[Record]:
    """Raw records as the bridge writes them (frames of topic and payload)."""
    return [(partition, encode_frames(chunk)) for partition, chunk in chunks]


FRAMES_HEADERS = [(CONTENT_TYPE_HEADER, FRAMES_CONTENT_TYPE)]


def valid_records(
    chunks: Sequence[tuple[int, list[Message]]], reference_dir: Path, partitions: int, now: datetime
) -> list[Record]:
    """What the validation stage writes for those raw records (the bridge's frames): the
    validation engine's valid records, per raw record and commune partition."""
    engine = ValidationEngine(
        load_reference(reference_dir),
        RecentEventIds(horizon=3600),
        ValidationCounters(),
        partitions,
        lambda: now,
    )
    out: list[Record] = []
    for offset, (partition, record) in enumerate(bridge_records(chunks)):
        raw = RawRecord(raw_topic("energy"), partition, offset, None, record, FRAMES_HEADERS)
        routed = engine.apply(raw)
        if routed.dead:
            raise ValueError(f"the bench workload must validate; it gave {routed.dead[0].value[:300]!r}")
        out += [(valid.partition or 0, valid.value) for valid in routed.valid]
    return out
