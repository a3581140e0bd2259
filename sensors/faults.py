"""The faults real devices have, each with a rate, and how a reading is spoiled by each.

Rates are probabilities per reading, except ``clock_skew`` (the share of devices whose
clock is off) and ``offline`` (the chance, at each reading, that the device loses its
connection for a while and later flushes its backlog). What the platform should do with
each, so that a test can reconcile what was sent with what arrived:

========================  =====================================================  ==========================
fault                     what the device does                                   expected at validation
========================  =====================================================  ==========================
``malformed``             sends a broken payload (truncated JSON, a missing      dead-lettered
                          field, an unknown field, a commune by name)
``duplicate``             sends the same event twice (same event id)             the copy counted duplicate
``out_of_order``          the reading arrives after the device's next one        accepted
``late``                  the reading arrives 10 min to 3 h after its time       accepted (late for windows)
``clock_skew``            the device's clock is 1 to 30 min behind, or up to     accepted (within the
                          4 min ahead                                            5 min future tolerance)
``offline_backlog``       readings kept while offline, flushed on reconnection   accepted
``index_reset``           a cumulative index falls back to zero                  accepted (indicators flag it)
========================  =====================================================  ==========================

A message can carry several faults (a skewed device's late reading); a duplicated message's
copy carries its original's faults as well as ``duplicate``.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from typing import Any

MALFORMED = "malformed"
DUPLICATE = "duplicate"
OUT_OF_ORDER = "out_of_order"
LATE = "late"
CLOCK_SKEW = "clock_skew"
OFFLINE_BACKLOG = "offline_backlog"
INDEX_RESET = "index_reset"
FAULTS = (MALFORMED, DUPLICATE, OUT_OF_ORDER, LATE, CLOCK_SKEW, OFFLINE_BACKLOG, INDEX_RESET)

ACCEPTED = "accepted"
DEAD_LETTERED = "dead_lettered"
DUPLICATE_DROPPED = "duplicate"
"""Where validation should put a message (``expected_at_validation``), with a registered fleet."""

MAX_SKEW_AHEAD_S = 240.0
"""Below validation's 300 s tolerance for clocks ahead, so a skewed reading is still accepted."""


@dataclass(frozen=True)
class FaultRates:
    """Probability of each fault (see the module's table)."""

    malformed: float = 0.0
    duplicate: float = 0.0
    out_of_order: float = 0.0
    late: float = 0.0
    clock_skew: float = 0.0
    offline: float = 0.0
    index_reset: float = 0.0

    def __post_init__(self) -> None:
        for name, rate in asdict(self).items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault rate {name}={rate} must be between 0 and 1")
        if self.malformed + self.duplicate + self.out_of_order + self.late > 1.0:
            raise ValueError(
                "malformed + duplicate + out_of_order + late must not exceed 1 (one per reading)"
            )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def expected_at_validation(faults: tuple[str, ...]) -> str:
    """The validation outcome of a message carrying ``faults`` (the module's table)."""
    if MALFORMED in faults:
        return DEAD_LETTERED
    if DUPLICATE in faults:
        return DUPLICATE_DROPPED
    return ACCEPTED


def clock_skew_s(rng: random.Random) -> float:
    """A faulty clock's offset in seconds: mostly behind, sometimes a little ahead."""
    if rng.random() < 0.5:
        return float(rng.randrange(30, int(MAX_SKEW_AHEAD_S) + 1))
    return -float(rng.randrange(60, 1801))


def late_delay_s(rng: random.Random) -> float:
    return float(rng.randrange(600, 3 * 3600 + 1))


def outage_s(rng: random.Random) -> float:
    return float(rng.randrange(1800, 6 * 3600 + 1))


def spoil(payload: dict[str, Any], rng: random.Random) -> bytes:
    """A payload the family's contract refuses, in one of the ways devices get it wrong."""
    how = rng.randrange(4)
    if how == 0:
        text = json.dumps(payload, separators=(",", ":"))
        return text[: len(text) // 2].encode()  # cut off mid-message
    broken = dict(payload)
    if how == 1:
        del broken["event_time"]
    elif how == 2:
        broken["firmware"] = "2.3.1-beta"  # contracts refuse unknown fields
    else:
        broken["commune"] = "La Rochelle"  # a name where the INSEE code belongs
    return json.dumps(broken, separators=(",", ":")).encode()
