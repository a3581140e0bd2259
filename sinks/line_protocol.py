"""Indicator updates as InfluxDB line protocol: the sink's data model, as pure functions.

One point per series and window start: measurement = indicator, tags = window size and the
dimensions (low cardinality by construction: commune, sector, carrier, mode, station...),
fields = value, final, revision, unit, timestamp = window start in seconds. Rewriting a
window writes the same measurement, tags and time, so InfluxDB overwrites the point: writes
are idempotent. Formatting by hand costs a fraction of influxdb-client's ``Point``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from schemas.indicator import IndicatorUpdate

# Line protocol escaping: https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n"})
_TAG_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\=", "\n": r"\n"})


class IndicatorLine(NamedTuple):
    """A point ready to write: ``key`` identifies it (a later line with the same key wins)."""

    key: str
    line: str
    window: str


def _string_field(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def indicator_line(update: IndicatorUpdate) -> IndicatorLine:
    """The line protocol point of an indicator update (precision: seconds)."""
    series = (
        update.indicator.translate(_MEASUREMENT_ESCAPES) + ",window=" + update.window.translate(_TAG_ESCAPES)
    )
    for name, value in sorted(update.dimensions.items()):
        if value:  # InfluxDB refuses empty tag values; an absent tag means the same thing
            series += f",{name.translate(_TAG_ESCAPES)}={value.translate(_TAG_ESCAPES)}"
    timestamp = int(update.window_start.timestamp())
    fields = (
        f"value={float(update.value)!r},final={'true' if update.final else 'false'},"
        f"revision={update.revision}i,unit={_string_field(update.unit)}"
    )
    return IndicatorLine(f"{series} {timestamp}", f"{series} {fields} {timestamp}", update.window)


# The exact shape our indicator stage writes (``IndicatorUpdate.model_dump_json(by_alias=True)``).
# Anything else, including what the model would accept in lax mode (a missing default, a
# number as a string, a Unix timestamp), goes through the model: same result, same dead letter.
_UPDATE_KEYS = frozenset(
    ("schema", "schema_version", "indicator", "unit", "window", "window_start", "window_end",
     "dimensions", "value", "final", "revision", "updated_at")
)  # fmt: skip
# An RFC 3339 instant with an explicit offset; anything else (a space for T, 7+ fraction
# digits...) is the model's job.
_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)")
_EXACT_FLOAT_INTS = 2**53
_isfinite = math.isfinite
_CACHE_BOUND = 1 << 16  # series, instants and units; past it a cache starts again (never wrong, only slower)


def _epoch_seconds(text: str) -> int | None:
    """``int(datetime.timestamp())`` of an instant as pydantic's ``UtcDatetime`` reads it; None: not one."""
    if _INSTANT.fullmatch(text) is None:
        return None
    try:
        # fromisoformat and pydantic read this subset alike (Z, offsets, up to 6 fraction
        # digits); out-of-range fields raise, and so does an instant UTC cannot hold.
        return int(datetime.fromisoformat(text).astimezone(UTC).timestamp())
    except (ValueError, OverflowError):
        return None


class IndicatorLineFormatter:
    """Lines straight from a parsed indicator-update record, byte-identical to ``indicator_line``.

    Each goes straight into the caller's ``key -> line`` dict: no ``IndicatorLine`` per point
    to build, then unpack (0.4 µs per point with the buffer's loop over them, measured offline).

    Costs a dict lookup per series, instant and unit instead of a validated model: the
    prefix ``measurement,tags`` of each series, the seconds of each instant and the escaped
    unit are kept. ``head(window)`` goes in front of key and line (the sink's bucket).
    """

    def __init__(self, head: Callable[[str], str] = lambda window: "") -> None:
        self._head = head
        self._series: dict[tuple[Any, ...], str] = {}
        self._times: dict[str, str] = {}  # instant -> " <seconds>"
        self._units: dict[str, str] = {}

    def into(self, record: Any, points: dict[str, str]) -> str | None:
        """Put the point of ``record`` (a ``from_json`` result) in ``points`` (key -> line, a later
        line of a key replaces it) and return its key; None: only the model may judge it."""
        try:
            return self._into(record, points)
        except (TypeError, KeyError):  # unhashable where a string belongs, or not our keys: the model's job
            return None

    def _into(self, record: Any, points: dict[str, str]) -> str | None:
        # Every key of _UPDATE_KEYS is read below (a missing one: KeyError), so a record with
        # as many keys has exactly those; cheaper than comparing key sets (0.2 µs).
        if type(record) is not dict or len(record) != len(_UPDATE_KEYS):
            return None
        window, dimensions, value, revision = (
            record["window"], record["dimensions"], record["value"], record["revision"]
        )  # fmt: skip
        if type(value) is float:
            if not _isfinite(value):
                return None
        elif type(value) is int and -_EXACT_FLOAT_INTS <= value <= _EXACT_FLOAT_INTS:
            value = float(value)
        else:
            return None
        final = record["final"]
        if (
            type(revision) is not int
            or revision < 0
            or type(final) is not bool
            or record["schema"] != "indicator.update"
            or type(record["schema_version"]) is not int
            or type(dimensions) is not dict
        ):
            return None
        # A cached key holds only str: a record whose key equals it holds only str too.
        series_key = (record["indicator"], window, *dimensions.items())
        series = self._series.get(series_key)
        if series is None:
            series = self._new_series(series_key, record["indicator"], window, dimensions)
            if series is None:
                return None
        times = self._times
        time = times.get(record["window_start"])
        if time is None:
            time = self._instant(record["window_start"])
            if time is None:
                return None
        if record["window_end"] not in times and self._instant(record["window_end"]) is None:
            return None
        if record["updated_at"] not in times and self._instant(record["updated_at"]) is None:
            return None
        unit = self._units.get(record["unit"])
        if unit is None:
            if type(record["unit"]) is not str:
                return None
            if len(self._units) >= _CACHE_BOUND:
                self._units.clear()
            unit = self._units[record["unit"]] = _string_field(record["unit"])
        flag = ",final=true,revision=" if final else ",final=false,revision="
        key = series + time
        points[key] = f"{series} value={value!r}{flag}{revision}i,unit={unit}{time}"
        return key

    def _new_series(
        self, key: tuple[Any, ...], indicator: Any, window: Any, dimensions: dict[Any, Any]
    ) -> str | None:
        if type(indicator) is not str or not indicator or type(window) is not str:
            return None
        if any(type(v) is not str for v in dimensions.values()):
            return None
        series = self._head(window) + indicator.translate(_MEASUREMENT_ESCAPES)
        series += ",window=" + window.translate(_TAG_ESCAPES)
        for name, value in sorted(dimensions.items()):
            if value:
                series += f",{name.translate(_TAG_ESCAPES)}={value.translate(_TAG_ESCAPES)}"
        if len(self._series) >= _CACHE_BOUND:
            self._series.clear()
        self._series[key] = series
        return series

    def _instant(self, text: Any) -> str | None:
        """`` <seconds>``, the end of a line at ``text``; None: not an instant the fast path takes."""
        if type(text) is not str:
            return None
        seconds = _epoch_seconds(text)
        if seconds is None:
            return None
        if len(self._times) >= _CACHE_BOUND:
            self._times.clear()
        time = self._times[text] = f" {seconds}"
        return time
