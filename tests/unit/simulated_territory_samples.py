"""What the simulator's unit tests share: the reference data, a fixed clock, an origin, fault
rates touching every fault, and a way to take a stream's emissions."""

from __future__ import annotations

from datetime import UTC, datetime

from reference.loader import load_reference
from schemas.dead_letter import Origin
from sensors.faults import FaultRates
from sensors.territory_stream import Emission, TerritoryStream

REFERENCE = load_reference()
COMMUNES = list(REFERENCE.communes.values())
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
START = NOW.timestamp() - 3 * 86400
ORIGIN = Origin(transport="mqtt", topic="zc-test")


def every_fault(index_reset: float) -> FaultRates:
    """A few per cent of each fault (offline rarer: a device's whole backlog follows)."""
    return FaultRates(
        malformed=0.03,
        duplicate=0.03,
        out_of_order=0.03,
        late=0.03,
        clock_skew=0.1,
        offline=0.002,
        index_reset=index_reset,
    )


def take(stream: TerritoryStream, n: int) -> list[Emission]:
    """``n`` emissions and whatever the stream still holds back (late and offline readings)."""
    return [next(stream) for _ in range(n)] + stream.drain()
