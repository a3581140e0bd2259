"""The collectors' retry policy (collectors/retry_policy.py), without a clock or a server.

What is proven: a ``Retry-After`` header is read in both of its forms (delay-seconds and an
HTTP date, against a fixed ``now``), a date in the past asks for no wait, an unreadable one is
ignored (None) rather than guessed, and no source can make a collector wait more than
RETRY_AFTER_CAP_S; the backoff is full jitter, really uniform over [0, min(cap, base x
2^(attempt-1))] (its upper bound is reached, its draws are not one constant) and never
outside it; and ``retry_delay`` waits at least what the source asked, less than a second
more. Why: a collector polls someone else's service, often a small open-data portal; waiting
less than asked gets it banned, waiting the same as every other restarted collector makes
them knock together.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from collectors.retry_policy import (
    BACKOFF_BASE_S,
    BACKOFF_CAP_S,
    RETRY_AFTER_CAP_S,
    backoff_seconds,
    retry_after_seconds,
    retry_delay,
)

NOW_DT = datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC)
NOW = NOW_DT.timestamp()
DRAWS = 4000


def _http_date(moment: datetime) -> str:
    """An HTTP date (IMF-fixdate, RFC 9110): ``Sun, 06 Dec 2026 10:01:30 GMT``."""
    return format_datetime(moment, usegmt=True)


def _bound(attempt: int, base: float = BACKOFF_BASE_S, cap: float = BACKOFF_CAP_S) -> float:
    return min(cap, base * 2 ** (attempt - 1))


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120.0), ("0", 0.0), (" 7 ", 7.0), ("3600", 3600.0)],
)
def test_retry_after_as_delay_seconds(header: str, seconds: float) -> None:
    assert retry_after_seconds(header, NOW) == seconds


def test_retry_after_as_an_http_date_in_the_future_is_the_difference() -> None:
    header = _http_date(NOW_DT + timedelta(seconds=90))
    assert header.endswith(" GMT")
    assert retry_after_seconds(header, NOW) == pytest.approx(90.0)


def test_retry_after_as_an_http_date_in_the_past_asks_for_no_wait() -> None:
    assert retry_after_seconds(_http_date(NOW_DT - timedelta(minutes=5)), NOW) == 0.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 0.0  # RFC 9110's example


@pytest.mark.parametrize(
    "header",
    [
        "soon",
        "",
        "   ",
        "1.5",  # delay-seconds is a non-negative integer
        "-5",
        "12 seconds",
        "Sun, 06 Dec 2026 10:01:30",  # a date without its zone is not an HTTP date
        "Sun, 32 Dec 2026 10:01:30 GMT",
    ],
)
def test_an_unreadable_retry_after_is_none(header: str) -> None:
    assert retry_after_seconds(header, NOW) is None


def test_an_absent_retry_after_is_none() -> None:
    assert retry_after_seconds(None, NOW) is None


def test_a_retry_after_of_unicode_digits_is_unreadable_not_an_error() -> None:
    assert retry_after_seconds("²", NOW) is None


@pytest.mark.parametrize(
    "header",
    ["86400", "99999999999999999999999", _http_date(NOW_DT + timedelta(days=2))],
)
def test_a_retry_after_beyond_the_cap_is_capped(header: str) -> None:
    assert retry_after_seconds(header, NOW) == RETRY_AFTER_CAP_S


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 6, 7, 8, 12, 40])
def test_backoff_is_full_jitter_over_its_whole_range(attempt: int) -> None:
    bound = _bound(attempt)
    rng = random.Random(attempt)
    draws = [backoff_seconds(attempt, rng) for _ in range(DRAWS)]
    assert all(0.0 <= d <= bound for d in draws)
    # Uniform over [0, bound]: the draws come near both ends and are not one repeated value.
    assert max(draws) >= 0.99 * bound
    assert min(draws) <= 0.01 * bound
    assert len(set(draws)) > DRAWS * 0.99
    assert sum(draws) / DRAWS == pytest.approx(bound / 2, rel=0.05)


def test_backoff_doubles_until_its_cap() -> None:
    assert [_bound(a) for a in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    for attempt in range(1, 12):
        rng = random.Random(1000 + attempt)
        top = max(backoff_seconds(attempt, rng) for _ in range(DRAWS))
        assert _bound(attempt) * 0.99 <= top <= _bound(attempt)


def test_backoff_with_its_own_base_and_cap() -> None:
    rng = random.Random(7)
    for attempt in (1, 2, 3, 4, 5):
        draws = [backoff_seconds(attempt, rng, base=0.5, cap=3.0) for _ in range(DRAWS)]
        bound = _bound(attempt, base=0.5, cap=3.0)
        assert all(0.0 <= d <= bound for d in draws)
        assert max(draws) >= 0.99 * bound


def test_two_collectors_restarted_together_do_not_wait_alike() -> None:
    first = [backoff_seconds(a, random.Random(1)) for a in range(1, 8)]
    second = [backoff_seconds(a, random.Random(2)) for a in range(1, 8)]
    assert first != second


@pytest.mark.parametrize(
    ("header", "asked"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (_http_date(NOW_DT + timedelta(seconds=30)), 30.0),
        (_http_date(NOW_DT - timedelta(seconds=30)), 0.0),
        ("86400", RETRY_AFTER_CAP_S),
    ],
)
def test_retry_delay_honours_retry_after(header: str, asked: float) -> None:
    for seed in range(500):
        rng = random.Random(seed)
        # Whatever the attempt: the source's wish wins over the backoff, even a short one.
        delay = retry_delay(8, header, NOW, rng)
        assert asked <= delay < asked + 1.0


def test_retry_delay_without_a_readable_retry_after_is_the_backoff() -> None:
    for attempt in (1, 3, 9):
        for header in (None, "soon"):
            delays = [retry_delay(attempt, header, NOW, random.Random(s)) for s in range(500)]
            assert all(0.0 <= d <= _bound(attempt) for d in delays)
            assert len(set(delays)) > 450
