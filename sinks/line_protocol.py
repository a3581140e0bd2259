"""Indicator updates as InfluxDB line protocol: the sink's data model, as pure functions.

One point per series and window start. What each field of the update is in the line
(measurement, tag, field and its type, timestamp, not written) is ``INDICATOR_UPDATE_WIRE``
(schemas/indicator.py): the indicator is the measurement, the window and the dimensions
(low cardinality by construction: commune, sector, carrier, mode, station...) the tags, the
window start the timestamp, in seconds. Rewriting a window writes the same measurement, tags
and time, so InfluxDB overwrites the point: writes are idempotent. Formatting by hand costs a
fraction of influxdb-client's ``Point``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, Literal, NamedTuple, get_args, get_origin

from pydantic import AwareDatetime

from schemas.indicator import INDICATOR_UPDATE_WIRE, IndicatorUpdate, LineType, WireFormat

# Line protocol escaping: https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n"})
_TAG_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\=", "\n": r"\n"})
_WIRE = INDICATOR_UPDATE_WIRE


class IndicatorLine(NamedTuple):
    """A point ready to write: ``key`` identifies it (a later line with the same key wins)."""

    key: str
    line: str
    window: str


def _string_field(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# A field's value as line protocol writes it, by type.
_FIELD_TEXT: dict[LineType, Callable[[Any], str]] = {
    LineType.FLOAT: lambda value: repr(float(value)),
    LineType.INTEGER: lambda value: f"{value}i",
    LineType.BOOLEAN: lambda value: "true" if value else "false",
    LineType.STRING: _string_field,
}


def _series(measurement: str, tags: Iterable[tuple[str, str]], tag_map: dict[str, str]) -> str:
    """``measurement,tag=value...``: the tags in their order, then the map's by name."""
    series = measurement.translate(_MEASUREMENT_ESCAPES)
    for name, value in tags:
        series += f",{name.translate(_TAG_ESCAPES)}={value.translate(_TAG_ESCAPES)}"
    for name, value in sorted(tag_map.items()):
        if value:  # InfluxDB refuses empty tag values; an absent tag means the same thing
            series += f",{name.translate(_TAG_ESCAPES)}={value.translate(_TAG_ESCAPES)}"
    return series


def indicator_line(update: IndicatorUpdate) -> IndicatorLine:
    """The line protocol point of an indicator update (precision: seconds), as
    ``INDICATOR_UPDATE_WIRE`` lays it out: the reference the fast paths below are held to."""
    series = _series(
        getattr(update, _WIRE.measurement),
        [(tag, getattr(update, tag)) for tag in _WIRE.tags],
        getattr(update, _WIRE.tag_map) if _WIRE.tag_map else {},
    )
    timestamp = int(getattr(update, _WIRE.timestamp).timestamp())
    fields = ",".join(f"{name}={_FIELD_TEXT[kind](getattr(update, name))}" for name, kind in _WIRE.fields)
    return IndicatorLine(f"{series} {timestamp}", f"{series} {fields} {timestamp}", update.window)


class _FastReads(NamedTuple):
    keys: tuple[str, ...]  # the record's keys, in the order IndicatorLineFormatter unpacks them
    window_tag: str
    texts: tuple[str, str, str, str]  # the line's text around the fields' values
    schema_name: str


def _kind(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return "literal"
    return "instant" if annotation in (datetime, AwareDatetime) else getattr(annotation, "__name__", "?")


def _fast_reads(wire: WireFormat) -> _FastReads:
    """What ``IndicatorLineFormatter`` reads and writes, from ``wire``.

    It is written for this shape of the contract: one tag (the window), a tag map, then a
    float, a boolean, an integer and a string field; not written, the schema (a literal), its
    version (an int) and two more instants. Another shape stops the import here, until the
    formatter and the Rust batcher (sinks/native_lines) are taught it.
    """
    annotations = {name: info.annotation for name, info in wire.model.model_fields.items()}
    not_written: dict[str, list[str]] = {}
    for name in wire.not_written:
        not_written.setdefault(_kind(annotations[name]), []).append(name)
    match (wire.tags, wire.tag_map, wire.fields, not_written):
        case (
            (window,),
            str(tag_map),
            ((f, LineType.FLOAT), (b, LineType.BOOLEAN), (i, LineType.INTEGER), (s, LineType.STRING)),
            {"literal": [schema], "int": [version], "instant": [end, other], **rest},
        ) if not rest:
            written = (wire.measurement, window, tag_map, f, b, i, s, wire.timestamp)
            return _FastReads(
                keys=tuple(wire.json_key[name] for name in (*written, end, other, schema, version)),
                window_tag=window,
                texts=(f" {f}=", f",{b}=false,{i}=", f",{b}=true,{i}=", f"i,{s}="),
                schema_name=get_args(annotations[schema])[0],
            )
    raise TypeError(f"IndicatorLineFormatter (sinks/line_protocol.py) is not written for {wire}")


_READS = _fast_reads(_WIRE)
_read = itemgetter(*_READS.keys)
_KEY_COUNT = len(_WIRE.json_keys)
_VALUE_IS, _FALSE_REVISION_IS, _TRUE_REVISION_IS, _UNIT_IS = _READS.texts
_SCHEMA_NAME = _READS.schema_name


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
        # Every key of the contract is read below (a missing one: KeyError), so a record with
        # as many keys has exactly those; cheaper than comparing key sets (0.2 µs).
        if type(record) is not dict or len(record) != _KEY_COUNT:
            return None
        indicator, window, dimensions, value, final, revision, unit, start, end, other, schema, version = (
            _read(record)
        )
        if type(value) is float:
            if not _isfinite(value):
                return None
        elif type(value) is int and -_EXACT_FLOAT_INTS <= value <= _EXACT_FLOAT_INTS:
            value = float(value)
        else:
            return None
        if (
            type(revision) is not int
            or revision < 0
            or type(final) is not bool
            or schema != _SCHEMA_NAME
            or type(version) is not int
            or type(dimensions) is not dict
        ):
            return None
        # A cached key holds only str: a record whose key equals it holds only str too.
        series_key = (indicator, window, *dimensions.items())
        series = self._series.get(series_key)
        if series is None:
            series = self._new_series(series_key, indicator, window, dimensions)
            if series is None:
                return None
        times = self._times
        time = times.get(start)
        if time is None:
            time = self._instant(start)
            if time is None:
                return None
        if end not in times and self._instant(end) is None:
            return None
        if other not in times and self._instant(other) is None:
            return None
        unit_text = self._units.get(unit)
        if unit_text is None:
            if type(unit) is not str:
                return None
            if len(self._units) >= _CACHE_BOUND:
                self._units.clear()
            unit_text = self._units[unit] = _UNIT_IS + _string_field(unit)
        flag = _TRUE_REVISION_IS if final else _FALSE_REVISION_IS
        key = series + time
        points[key] = f"{series}{_VALUE_IS}{value!r}{flag}{revision}{unit_text}{time}"
        return key

    def _new_series(
        self, key: tuple[Any, ...], indicator: Any, window: Any, dimensions: dict[Any, Any]
    ) -> str | None:
        if type(indicator) is not str or not indicator or type(window) is not str:
            return None
        if any(type(v) is not str for v in dimensions.values()):
            return None
        series = self._head(window) + _series(indicator, ((_READS.window_tag, window),), dimensions)
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
