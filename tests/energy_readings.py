"""A valid energy reading of the registered meter elec-17300-0001, for tests of every tier."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def energy_reading(producer: str, event_id: str, now: datetime, **changes: Any) -> dict[str, Any]:
    """A 15-minute interval of 350 Wh ending at ``now``; ``changes`` override its fields."""
    payload: dict[str, Any] = {
        "event_id": event_id,
        "producer_id": producer,
        "event_time": now.isoformat(),
        "meter_id": "elec-17300-0001",
        "commune": "17300",
        "sector": "residential",
        "carrier": "electricity",
        "quantity": 350,
        "unit": "Wh",
        "kind": "interval",
        "interval_start": (now - timedelta(minutes=15)).isoformat(),
    }
    payload.update(changes)
    return payload
