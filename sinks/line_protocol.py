"""Indicator updates as InfluxDB line protocol: the sink's data model, as pure functions.

One point per series and window start: measurement = indicator, tags = window size and the
dimensions (low cardinality by construction: commune, sector, carrier, mode, station...),
fields = value, final, revision, unit, timestamp = window start in seconds. Rewriting a
window writes the same measurement, tags and time, so InfluxDB overwrites the point: writes
are idempotent. Formatting by hand costs a fraction of influxdb-client's ``Point``.
"""

from __future__ import annotations

from typing import NamedTuple

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
