"""Freshness and completeness per producer and commune: is each source still sending?

Readings are partitioned by commune, so a partition sees every device of its communes and
both indicators are exact in one partition's state:
- ``producer_last_event_time`` {producer, commune}: the latest event time seen (epoch
  seconds, window ``ytd``); an operator's freshness is now minus this value;
- ``producer_completeness_ratio`` {producer, commune}, hourly: devices of the producer in
  the commune that reported in the hour / devices the registry lists for them; final once
  the partition's watermark passes the hour's end plus the grace period.
Pure and checkpointed with the window state, so a restart neither forgets nor double counts.

Bounded by identity: an event is tracked under its device's row of the registry (producer and
commune), never under the producer id its payload claims, so the state holds at most the
registry's (producer, commune) pairs and devices. An event of a device the registry does not
list (validation refuses those: only a record written to a valid topic by someone else, or a
device removed since) moves the freshness of one bounded source, ``unregistered`` in its
commune when the commune is the territory's, else ``unregistered`` in ``unregistered``; it has
no completeness, so its device is not remembered.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reference.loader import Device
from schemas.local_calendar import UTC_CALENDAR, Calendar
from streams.indicators.window_assignment import epoch_seconds
from streams.indicators.window_state import WindowUpdate

HOUR = 3600
LAST_EVENT = "producer_last_event_time"
COMPLETENESS = "producer_completeness_ratio"

Source = tuple[str, str]  # producer, commune
UNREGISTERED = "unregistered"  # the producer (and commune) of a device the registry does not list


@dataclass
class ProducerActivity:
    grace_seconds: int
    last_event: dict[Source, int] = field(default_factory=dict)
    # (producer, commune, hour start) -> devices that reported in that hour, while open.
    hours: dict[tuple[str, str, int], set[str]] = field(default_factory=dict)
    touched_last: set[Source] = field(default_factory=set)
    touched_hours: set[tuple[str, str, int]] = field(default_factory=set)
    watermark: int = 0
    # Whose year the last event's year to date is (the partition's windows' calendar).
    calendar: Calendar = field(default=UTC_CALENDAR, repr=False)

    def add(self, producer: str, commune: str, device: str | None, event_time: int) -> None:
        """One event of ``device``; late events (their hour closed) only move freshness, and so
        does an event of no registered device (``device`` None)."""
        source = (producer, commune)
        if event_time > self.last_event.get(source, -1):
            self.last_event[source] = event_time
            self.touched_last.add(source)
        hour = event_time - event_time % HOUR
        if device is not None and self.watermark < hour + HOUR + self.grace_seconds:
            key = (producer, commune, hour)
            devices = self.hours.get(key)
            if devices is None:
                devices = self.hours[key] = set()
            if device not in devices:
                devices.add(device)
                self.touched_hours.add(key)
        if event_time > self.watermark:
            self.watermark = event_time

    def add_events(
        self,
        events: Iterable[Any],
        device_field: str,
        devices: Mapping[str, Device],
        communes: Container[str],
    ) -> None:
        """Validated events of one family (``device_field`` names their device id), each under
        its device's producer and commune in the registry ``devices``."""
        for e in events:
            device_id = getattr(e, device_field)
            device = devices.get(device_id)
            if device is not None:
                self.add(device.producer_id, device.commune, device_id, epoch_seconds(e.event_time))
            else:
                commune = e.commune if e.commune in communes else UNREGISTERED
                self.add(UNREGISTERED, commune, None, epoch_seconds(e.event_time))

    def flush(self, registered: Mapping[Source, int]) -> list[WindowUpdate]:
        """Updates of what changed, and the final completeness of the hours that closed."""
        updates = []
        for producer, commune in sorted(self.touched_last):
            at = self.last_event[(producer, commune)]
            dims = (("commune", commune), ("producer", producer))
            year = self.calendar.year_start(self.calendar.year_of(at))
            updates.append(WindowUpdate(LAST_EVENT, dims, 0, year, float(at), 1, False, 0))
        closing = {k for k in self.hours if self.watermark >= k[2] + HOUR + self.grace_seconds}
        for key in sorted(self.touched_hours | closing):
            producer, commune, hour = key
            expected = registered.get((producer, commune), 0)
            if expected:  # a producer without registered devices here has no completeness
                dims = (("commune", commune), ("producer", producer))
                ratio = len(self.hours[key]) / expected
                updates.append(WindowUpdate(COMPLETENESS, dims, HOUR, hour, ratio, 1, key in closing, 0))
        for key in closing:
            del self.hours[key]
        self.touched_last.clear()
        self.touched_hours.clear()
        return updates

    def to_doc(self) -> dict[str, Any]:
        """Checkpoint form (flush first: nothing pending)."""
        return {
            "last": sorted([p, c, t] for (p, c), t in self.last_event.items()),
            "hours": sorted([p, c, h, sorted(d)] for (p, c, h), d in self.hours.items()),
            "watermark": self.watermark,
        }

    @classmethod
    def from_doc(
        cls, doc: Mapping[str, Any] | None, grace_seconds: int, calendar: Calendar = UTC_CALENDAR
    ) -> ProducerActivity:
        state = cls(grace_seconds, calendar=calendar)
        if doc:
            state.last_event = {(p, c): t for p, c, t in doc["last"]}
            state.hours = {(p, c, h): set(d) for p, c, h, d in doc["hours"]}
            state.watermark = doc["watermark"]
        return state


def registered_devices(devices: Mapping[str, Any]) -> dict[Source, int]:
    """Devices per (producer, commune) in a registry (reference.loader.Device values)."""
    counts: dict[Source, int] = {}
    for device in devices.values():
        key = (device.producer_id, device.commune)
        counts[key] = counts.get(key, 0) + 1
    return counts
