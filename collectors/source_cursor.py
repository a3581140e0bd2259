"""How far a source has been collected, kept on disk so that a restart resumes exactly there.

Per device of the source: the time of the newest event sent and the ids of the events sent
at that time (a snapshot feed repeats a station's status until it changes; two records may
share a time). An event is new when it is younger than its device's newest, or as old but
not one of those ids. Per request: the ``ETag`` and ``Last-Modified`` the source gave, for
conditional requests. Both are saved together, and only after Kafka has acknowledged every
event and dead letter of the page: a crash before that makes the next poll ask again and
send again what the previous one may have sent, and validation drops those repeats by their
event ids; a crash after it loses nothing, since nothing is marked collected before it is in
Kafka.

The limit: a record published later with a time older than its device's newest already
collected is taken as collected (``already_collected``), not sent. Sources that correct
the past publish it again under a new time, or need a replay (`zerocarbon replay`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sensors.replay_mapping import SourceEvent

CURSOR_VERSION = 1
REFUSED_KEPT = 4096  # digests of the latest rows dead-lettered here, so a snapshot feed's
# unmappable row (a station not in the mapping) is dead-lettered once, not at every poll


@dataclass
class DeviceMark:
    time: float
    ids: set[str] = field(default_factory=set)


@dataclass
class SourceCursor:
    path: Path
    devices: dict[str, DeviceMark] = field(default_factory=dict)
    validators: dict[str, dict[str, str]] = field(default_factory=dict)
    refused: dict[str, None] = field(default_factory=dict)  # row digests, oldest first

    def since(self) -> float | None:
        """The oldest of the devices' newest times: asking from there misses no device."""
        return min((mark.time for mark in self.devices.values()), default=None)

    def fresh(self, events: Iterable[SourceEvent]) -> tuple[list[SourceEvent], int]:
        """The events not yet collected (each once, even if the page repeats one), and how
        many were already collected."""
        new: list[SourceEvent] = []
        seen: set[str] = set()
        old = 0
        for event in events:
            mark = self.devices.get(event.device_id)
            if event.event_id in seen or (
                mark is not None
                and (event.time < mark.time or (event.time == mark.time and event.event_id in mark.ids))
            ):
                old += 1
                continue
            seen.add(event.event_id)
            new.append(event)
        return new, old

    def advance(self, events: Iterable[SourceEvent]) -> None:
        """Mark ``events`` collected (Kafka has acknowledged them)."""
        for event in events:
            mark = self.devices.get(event.device_id)
            if mark is None or event.time > mark.time:
                self.devices[event.device_id] = DeviceMark(event.time, {event.event_id})
            elif event.time == mark.time:
                mark.ids.add(event.event_id)

    def refuse(self, digests: Iterable[str]) -> None:
        """Mark rows dead-lettered (Kafka has acknowledged their dead letters)."""
        for digest in digests:
            self.refused.pop(digest, None)
            self.refused[digest] = None
        for oldest in list(self.refused)[: max(0, len(self.refused) - REFUSED_KEPT)]:
            del self.refused[oldest]

    def keep_validators(self, keys: set[str]) -> None:
        """Forget the validators of requests not made by the last poll (an Opendatasoft query
        names the cursor's time: its key changes whenever the cursor moves)."""
        self.validators = {k: v for k, v in self.validators.items() if k in keys}

    def remember(self, key: str, etag: str | None, last_modified: str | None) -> None:
        """The validators of the answer to request ``key`` (for If-None-Match, If-Modified-Since)."""
        kept = {k: v for k, v in (("etag", etag), ("last_modified", last_modified)) if v}
        if kept:
            self.validators[key] = kept
        else:
            self.validators.pop(key, None)

    def save(self) -> None:
        """Write atomically (a temporary file, fsync, rename): a crash leaves the old or the new."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {
            "version": CURSOR_VERSION,
            "devices": {d: {"time": m.time, "ids": sorted(m.ids)} for d, m in sorted(self.devices.items())},
            "validators": self.validators,
            "refused": list(self.refused),
        }
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)


class CursorError(ValueError):
    """A cursor file that cannot be read; the message says which and what to do."""


def load_cursor(path: Path) -> SourceCursor:
    """The cursor kept at ``path``, or an empty one when the source was never collected."""
    if not path.exists():
        return SourceCursor(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != CURSOR_VERSION:
            raise CursorError(
                f"{path}: cursor version {data.get('version')!r}, this collector reads {CURSOR_VERSION}"
            )
        devices = {
            str(d): DeviceMark(float(m["time"]), {str(i) for i in m["ids"]})
            for d, m in data["devices"].items()
        }
        validators = {str(k): {str(a): str(b) for a, b in v.items()} for k, v in data["validators"].items()}
        refused = dict.fromkeys(str(d) for d in data.get("refused", []))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        if isinstance(exc, CursorError):
            raise
        raise CursorError(
            f"{path}: unreadable cursor ({exc}); move it away to collect the source from its start again"
        ) from exc
    return SourceCursor(path, devices, validators, refused)
