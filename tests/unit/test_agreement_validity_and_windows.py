"""What an agreement grants depends on the moment and the window asked for: nothing outside its validity,
and no window finer than its minimum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sharing.agreement_terms import WINDOW_ORDER
from tests.unit.agreement_fixtures import (
    CEST,
    LRU,
    PUBLIC,
    REGION,
    YELO,
    _changed,
    _constraint,
    _load,
    _sample,
    constraints,
)


def test_an_agreement_is_active_from_its_start_inclusive_until_its_end_exclusive() -> None:
    agreement = _load(_sample(YELO))  # 2026-06-01T00:00+02:00 .. 2027-06-01T00:00+02:00
    second = timedelta(microseconds=1)
    start = datetime(2026, 5, 31, 22, tzinfo=UTC)
    end = datetime(2027, 5, 31, 22, tzinfo=UTC)
    assert not agreement.active(start - second)
    assert agreement.active(start)
    assert agreement.active(datetime(2026, 6, 1, tzinfo=CEST))
    assert agreement.active(end - second)
    assert not agreement.active(end)
    assert not agreement.active(end + timedelta(days=400))


def test_an_agreement_without_an_end_stays_active() -> None:
    agreement = _load(_sample(PUBLIC))
    assert not agreement.active(datetime(2025, 12, 31, 22, 59, 59, tzinfo=UTC))
    assert agreement.active(datetime(2025, 12, 31, 23, tzinfo=UTC))
    assert agreement.active(datetime(2999, 1, 1, tzinfo=UTC))


def test_the_minimum_window_allows_it_and_every_coarser_one() -> None:
    public = _load(_sample(PUBLIC))
    assert [w for w in WINDOW_ORDER if public.window_allowed(w)] == ["1d", "1mo", "ytd"]
    region = _load(_sample(REGION))
    assert [w for w in WINDOW_ORDER if region.window_allowed(w)] == ["1h", "1d", "1mo", "ytd"]
    finest = _load(
        _changed(REGION, constraints(drop=("zc:window",), add=(_constraint("zc:window", "gteq", "1m"),)))
    )
    assert all(finest.window_allowed(w) for w in WINDOW_ORDER)


@pytest.mark.parametrize("window", ["1w", "", "1D", "60m"])
def test_a_window_of_no_known_size_is_not_allowed(window: str) -> None:
    assert not _load(
        _changed(REGION, constraints(drop=("zc:window",), add=(_constraint("zc:window", "gteq", "1m"),)))
    ).window_allowed(window)


@pytest.mark.parametrize("stem", [LRU, YELO])
def test_an_event_agreement_allows_no_window(stem: str) -> None:
    agreement = _load(_sample(stem))
    assert agreement.minimum_window is None
    assert not any(agreement.window_allowed(w) for w in WINDOW_ORDER)
