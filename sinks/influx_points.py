"""Smoke readings as InfluxDB points (indicators are line protocol: sinks/line_protocol.py)."""

from __future__ import annotations

from influxdb_client import Point, WritePrecision

from schemas.smoke_reading import SmokeReading


def smoke_point(measurement: str, reading: SmokeReading) -> Point:
    """A smoke reading as one point: tag device_id, field value, time = the reading's time."""
    return (
        Point(measurement)
        .tag("device_id", reading.device_id)
        .field("value", reading.value)
        .time(reading.time, WritePrecision.MS)
    )
