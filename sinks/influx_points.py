"""Turn events into InfluxDB points. Pure functions, so the data model is testable offline."""

from __future__ import annotations

from influxdb_client import Point, WritePrecision

from schemas.indicator import IndicatorUpdate
from schemas.smoke_reading import SmokeReading


def smoke_point(measurement: str, reading: SmokeReading) -> Point:
    """A smoke reading as one point: tag device_id, field value, time = the reading's time."""
    return (
        Point(measurement)
        .tag("device_id", reading.device_id)
        .field("value", reading.value)
        .time(reading.time, WritePrecision.MS)
    )


def indicator_point(update: IndicatorUpdate) -> Point:
    """An indicator update as one point: measurement = indicator, tags = window + dimensions,
    time = window start. Rewriting a window (a correction, a replay) overwrites the same point."""
    point = Point(update.indicator).tag("window", update.window)
    for name, value in sorted(update.dimensions.items()):
        point = point.tag(name, value)
    return (
        point.field("value", float(update.value))
        .field("final", update.final)
        .field("revision", update.revision)
        .field("unit", update.unit)
        .time(update.window_start, WritePrecision.S)
    )
