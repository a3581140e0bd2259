"""The smoke reading contract: aware times normalised to UTC, finite values, sane ids."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from schemas.smoke_reading import SmokeReading
from sinks.influx_points import smoke_point


def test_time_is_normalised_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    r = SmokeReading(device_id="m1", value=1.0, time=datetime(2026, 1, 1, 12, tzinfo=paris))
    assert r.time == datetime(2026, 1, 1, 11, tzinfo=UTC)
    assert r.time.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ('{"device_id": "m1", "value": 1, "time": "2026-01-01T00:00:00"}', "time"),
        ('{"device_id": "m1", "value": NaN, "time": "2026-01-01T00:00:00Z"}', "value"),
        ('{"device_id": "m 1", "value": 1, "time": "2026-01-01T00:00:00Z"}', "device_id"),
        ('{"device_id": "m1", "time": "2026-01-01T00:00:00Z"}', "value"),
        (
            '{"device_id": "m1", "value": 1, "time": "0001-01-01T00:00:00+00:01"}',
            "time",
        ),  # before year 1 in UTC
    ],
)
def test_invalid_payloads_name_the_field(payload: str, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SmokeReading.model_validate_json(payload)
    assert [e["loc"][0] for e in caught.value.errors()] == [field]


def test_point_carries_device_tag_value_and_time() -> None:
    r = SmokeReading(device_id="m1", value=2.5, time=datetime(2026, 1, 1, tzinfo=UTC))
    assert smoke_point("smoke_reading", r).to_line_protocol() == (
        "smoke_reading,device_id=m1 value=2.5 1767225600000"
    )
