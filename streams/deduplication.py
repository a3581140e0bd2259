"""Recently seen event ids, to count and drop resent events within a horizon."""

from __future__ import annotations

from collections import deque


class RecentEventIds:
    """(producer, event id) pairs seen in the last ``horizon`` seconds, at most ``max_size``.

    Bounded both ways so memory stays flat under any traffic; a duplicate arriving after
    the horizon (or after eviction) passes, and downstream writes are idempotent anyway.
    """

    def __init__(self, horizon: float, max_size: int = 1_000_000) -> None:
        self.horizon = horizon
        self.max_size = max_size
        # A set for membership and a queue in arrival order for expiry and eviction: cheaper
        # per event than an OrderedDict scanned from its head on every call (this runs once
        # per accepted event, bench/validation_throughput.py). A pair is in both or neither.
        self._seen: set[tuple[str, str]] = set()
        self._arrivals: deque[tuple[float, tuple[str, str]]] = deque()

    def seen_before(self, producer_id: str, event_id: str, now: float) -> bool:
        """Record the pair; True if it was already recorded within the horizon."""
        arrivals = self._arrivals
        if arrivals and arrivals[0][0] < now - self.horizon:
            self._expire(now)
        key = (producer_id, event_id)
        seen = self._seen
        if key in seen:
            return True
        seen.add(key)
        arrivals.append((now, key))
        if len(seen) > self.max_size:
            seen.discard(arrivals.popleft()[1])
        return False

    def _expire(self, now: float) -> None:
        limit = now - self.horizon
        arrivals, seen = self._arrivals, self._seen
        while arrivals and arrivals[0][0] < limit:
            seen.discard(arrivals.popleft()[1])

    def __len__(self) -> int:
        return len(self._seen)
