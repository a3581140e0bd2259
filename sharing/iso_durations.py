"""ISO 8601 durations as an agreement's retention may write them: weeks, days, hours, minutes,
seconds; years and months have no fixed length and are refused (write P365D)."""

from __future__ import annotations

import re
from datetime import timedelta

DURATION = re.compile(r"P(?:([0-9]+)W)?(?:([0-9]+)D)?(?:T(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+)S)?)?")
LONGEST_RETENTION = timedelta(days=36_525)
"""A century: a longer retention is a typing mistake, not a term."""


def iso_duration(text: str) -> timedelta | None:
    """An ISO 8601 duration of weeks, days, hours, minutes, seconds; None for anything else
    (years and months have no fixed length: write P365D)."""
    match = DURATION.fullmatch(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        return None
    weeks, days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    try:
        duration = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        return None
    return duration if duration <= LONGEST_RETENTION else None
