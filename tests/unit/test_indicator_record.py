"""What ``indicator_record`` leaves to the model: an update the model refuses, a clock not in
UTC. That its key and value are the model's bytes for every update is
tests/unit/test_indicator_contract_agreement.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError
from pydantic_core import to_json

from streams.indicators.catalogue import indicator_record
from streams.indicators.window_state import WindowUpdate


def test_what_the_model_refuses_is_still_refused() -> None:
    now = datetime(2026, 11, 29, tzinfo=UTC)
    update = WindowUpdate("energy_consumed_kwh", (("commune", "17300"),), 60, 0, float("inf"), 1, False, 0)
    with pytest.raises(ValidationError, match="finite"):
        indicator_record(update, now, to_json(now))


def test_a_clock_with_an_offset_is_published_in_utc() -> None:
    now = datetime(2026, 11, 29, 6, tzinfo=timezone(timedelta(hours=1)))
    update = WindowUpdate("emissions_kgco2e", (), 0, 1_767_225_600, 2.5, 1, False, 3)
    _, value = indicator_record(update, now, to_json(now))
    assert b'"updated_at":"2026-11-29T05:00:00Z"' in value
