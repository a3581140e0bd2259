"""Which fields of an event identify a household, whatever an agreement says.

A residential delivery point's meter is a household: its id, and the event id a device
derives from it (``<meter>-<time>``), leave the platform's own processing only as keyed
pseudonyms. An agreement may pseudonymise or omit more fields; it can never release these.
"""

from __future__ import annotations

from typing import Any

HOUSEHOLD_SECTORS = frozenset({"residential"})
HOUSEHOLD_FIELDS = ("meter_id", "event_id")


def household_fields(family: str, event: dict[str, Any]) -> tuple[str, ...]:
    """The fields of ``event`` that must be pseudonymised on every output: none unless it
    is a residential meter's reading."""
    if family == "energy" and event.get("sector") in HOUSEHOLD_SECTORS:
        return HOUSEHOLD_FIELDS
    return ()
