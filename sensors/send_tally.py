"""What a simulator or a replay sent, per family and per fault, and what validation should make of it.

The report ``zerocarbon simulate`` prints, so that a test can reconcile it with what reached
the broker, the typed topics and the dead-letter topic. ``SendTally`` says how many messages
carry each fault; ``FaultInstances``, on request (``--report-events FILE``), says which ones,
so that each instance can be found where it should have arrived.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sensors.faults import CLOCK_SKEW, DUPLICATE, FAULTS, MALFORMED, expected_at_validation
from sensors.territory_stream import Emission


@dataclass
class SendTally:
    """Messages handed to the broker, per family, per fault, and per family and fault."""

    messages: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    family_faults: dict[str, Counter[str]] = field(default_factory=dict)

    def count(self, family: str, faults: tuple[str, ...]) -> None:
        self.messages[family] += 1
        if faults:
            per_family = self.family_faults.get(family)
            if per_family is None:
                per_family = self.family_faults[family] = Counter()
            for fault in faults:
                self.faults[fault] += 1
                per_family[fault] += 1

    @property
    def total(self) -> int:
        return sum(self.messages.values())

    def expected_at_validation(self) -> dict[str, int]:
        """Accepted, dead-lettered and duplicate counts, if every device is in the registry."""
        dead = self.faults[MALFORMED]
        duplicates = self.faults[DUPLICATE]
        return {"accepted": self.total - dead - duplicates, "dead_lettered": dead, "duplicates": duplicates}

    def report(self) -> dict[str, Any]:
        return {
            "messages": self.total,
            "per_family": {
                family: {
                    "messages": n,
                    "faults": dict(sorted(self.family_faults.get(family, Counter()).items())),
                }
                for family, n in sorted(self.messages.items())
            },
            "per_fault": {fault: self.faults[fault] for fault in FAULTS},
            "expected_at_validation": self.expected_at_validation(),
        }


# Read from the bytes rather than parsed: a malformed payload may be cut off mid-message, and
# what it still says (its event id, often) is worth reporting.
_STRING_FIELD = {
    name: re.compile(rb'"' + name.encode() + rb'"\s*:\s*"([^"\\]*)"')
    for name in ("event_id", "event_time", "producer_id")
}


@dataclass
class FaultInstances:
    """Every message that carries a fault, one record each, in send order.

    A record says where the message went (family, MQTT topic, device), what identifies it
    downstream (event id, event time as the device stamped it, producer, SHA-256 of the
    payload), when it was sent (simulated clock) and where validation should put it. A
    malformed message also keeps its payload (base64), to be compared byte for byte with the
    dead letter; a skewed device's message keeps the clock's offset. ``skews`` holds the offset
    in seconds of each skewed device, by MQTT topic.
    """

    skews: Mapping[str, float] = field(default_factory=dict)
    sent: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)

    def add(self, emissions: Iterable[Emission]) -> None:
        """Account for messages just published, in the order they were published."""
        for emission in emissions:
            if emission.faults:
                self.records.append(self._record(self.sent, emission))
            self.sent += 1

    def _record(self, sequence: int, emission: Emission) -> dict[str, Any]:
        payload = emission.payload
        found = {name: pattern.search(payload) for name, pattern in _STRING_FIELD.items()}
        record: dict[str, Any] = {
            "sequence": sequence,
            "faults": list(emission.faults),
            "expected_at_validation": expected_at_validation(emission.faults),
            "family": emission.family,
            "topic": emission.topic,
            "device_id": emission.topic.rsplit("/", 1)[-1],
            **{name: match.group(1).decode() if match else None for name, match in found.items()},
            "sent_at": datetime.fromtimestamp(emission.clock, UTC).isoformat(timespec="seconds"),
            "payload_sha256": hashlib.sha256(payload).hexdigest(),
        }
        if MALFORMED in emission.faults:
            record["payload_base64"] = base64.b64encode(payload).decode("ascii")
        if CLOCK_SKEW in emission.faults:
            record["clock_skew_s"] = self.skews.get(emission.topic)
        return record

    def per_fault(self) -> dict[str, list[dict[str, Any]]]:
        """The records of the messages carrying each fault (a message is under each of its faults)."""
        out: dict[str, list[dict[str, Any]]] = {fault: [] for fault in FAULTS}
        for record in self.records:
            for fault in record["faults"]:
                out[fault].append(record)
        return out

    def report(self) -> dict[str, Any]:
        """The detailed report: messages sent, and per fault the records of its instances."""
        return {"messages": self.sent, "per_fault": self.per_fault()}
