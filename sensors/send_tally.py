"""What a simulator or a replay sent, per family and per fault, and what validation should make of it.

The report ``zerocarbon simulate`` prints, so that a test can reconcile it with what reached
the broker, the typed topics and the dead-letter topic.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sensors.faults import DUPLICATE, FAULTS, MALFORMED


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
