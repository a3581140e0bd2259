"""A valid energy reading of the registered meter elec-17300-0001, for tests of every tier."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from schemas.device_topics import device_topic


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


def meter_topic(payload: bytes) -> str:
    """The MQTT topic the bridge would have received ``payload`` on: its meter's own (validation
    holds a payload to it); a payload naming no meter, a topic of the family."""
    try:
        event = json.loads(payload)
        return device_topic(event["commune"], "energy", event["meter_id"])
    except (ValueError, KeyError, TypeError):
        return "zc/17300/energy/unnamed"
