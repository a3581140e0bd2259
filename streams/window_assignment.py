"""Tumbling windows on event time: which window a timestamp belongs to. Pure arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime

DEFAULT_WINDOWS_SECONDS: tuple[int, ...] = (60, 900, 3600, 86400)
"""1 minute, 15 minutes, 1 hour, 1 day (UTC days)."""

WINDOW_NAMES = {60: "1m", 900: "15m", 3600: "1h", 86400: "1d"}


def window_name(size_seconds: int) -> str:
    return WINDOW_NAMES.get(size_seconds, f"{size_seconds}s")


def window_start(event_time: datetime, size_seconds: int) -> int:
    """Start of the tumbling window holding ``event_time``, in epoch seconds (UTC-aligned)."""
    ts = int(event_time.timestamp())
    return ts - ts % size_seconds


def window_bounds(start: int, size_seconds: int) -> tuple[datetime, datetime]:
    return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(start + size_seconds, UTC)
