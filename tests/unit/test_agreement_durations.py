"""A retention is an ISO 8601 duration: only the forms of a fixed length are read, so that a retention of
years or months is refused rather than guessed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sharing.iso_durations import iso_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P30D", timedelta(days=30)),
        ("P365D", timedelta(days=365)),
        ("P12W", timedelta(weeks=12)),
        ("PT6H", timedelta(hours=6)),
        ("PT90M", timedelta(minutes=90)),
        ("PT45S", timedelta(seconds=45)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("P2W3DT4H5M6S", timedelta(weeks=2, days=3, hours=4, minutes=5, seconds=6)),
        ("P0D", timedelta(0)),
    ],
)
def test_a_duration_of_weeks_days_and_time_is_read(text: str, expected: timedelta) -> None:
    assert iso_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "P1Y",
        "P6M",
        "P1Y2D",
        "P",
        "PT",
        "P1DT",
        "",
        "30D",
        "P1.5D",
        "PT0.5S",
        "-P1D",
        "p30d",
        "P1H",
        "PT1D",
        "P1D ",
        " P1D",
    ],
)
def test_a_duration_of_years_months_or_another_form_is_none(text: str) -> None:
    assert iso_duration(text) is None


@pytest.mark.parametrize("text", ["PT\n", "P1D\n", "P\u0663D"])
def test_only_the_ascii_iso_form_is_a_duration(text: str) -> None:
    assert iso_duration(text) is None
