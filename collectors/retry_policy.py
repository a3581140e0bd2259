"""When to ask a source again: which answers are worth a retry, and after how long.

Pure functions, so that the politeness rules are tested without a clock or a server: a
``Retry-After`` the source sends is always honoured (it knows its load better than we do),
otherwise the delay grows exponentially with full jitter (AWS' "Exponential Backoff And
Jitter"), so that collectors restarted together do not knock together.
"""

from __future__ import annotations

import random
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 60.0
RETRY_AFTER_CAP_S = 3600.0  # a source asking for more than an hour is waited for one hour, then asked


def retry_after_seconds(header: str | None, now: float) -> float | None:
    """The wait a ``Retry-After`` header asks for (delay-seconds or an HTTP date), or None when
    absent or unreadable; never negative, at most RETRY_AFTER_CAP_S."""
    if header is None:
        return None
    text = header.strip()
    if text.isascii() and text.isdigit():  # "²".isdigit() is true too
        return min(float(text), RETRY_AFTER_CAP_S)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110: an HTTP date is in GMT
        return None
    return min(max(0.0, when.timestamp() - now), RETRY_AFTER_CAP_S)


def backoff_seconds(
    attempt: int, rng: random.Random, base: float = BACKOFF_BASE_S, cap: float = BACKOFF_CAP_S
) -> float:
    """Full jitter: uniform in [0, min(cap, base x 2^(attempt-1))] for the ``attempt``-th retry (1, 2...)."""
    return rng.uniform(0.0, min(cap, base * 2 ** max(0, attempt - 1)))


def retry_delay(attempt: int, retry_after: str | None, now: float, rng: random.Random) -> float:
    """How long to wait before retry number ``attempt``: the source's Retry-After if it gave one
    (the jitter on top of it stays under one second), else the backoff."""
    asked = retry_after_seconds(retry_after, now)
    if asked is not None:
        return asked + rng.uniform(0.0, min(1.0, BACKOFF_BASE_S))
    return backoff_seconds(attempt, rng)
