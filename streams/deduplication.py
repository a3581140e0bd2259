"""Recently seen event ids, to count and drop resent events within a horizon."""

from __future__ import annotations

from collections import OrderedDict


class RecentEventIds:
    """(producer, event id) pairs seen in the last ``horizon`` seconds, at most ``max_size``.

    Bounded both ways so memory stays flat under any traffic; a duplicate arriving after
    the horizon (or after eviction) passes, and downstream writes are idempotent anyway.
    """

    def __init__(self, horizon: float, max_size: int = 1_000_000) -> None:
        self.horizon = horizon
        self.max_size = max_size
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def seen_before(self, producer_id: str, event_id: str, now: float) -> bool:
        """Record the pair; True if it was already recorded within the horizon."""
        self._expire(now)
        key = (producer_id, event_id)
        if key in self._seen:
            return True
        self._seen[key] = now
        if len(self._seen) > self.max_size:
            self._seen.popitem(last=False)
        return False

    def _expire(self, now: float) -> None:
        limit = now - self.horizon
        while self._seen:
            key, stamp = next(iter(self._seen.items()))
            if stamp >= limit:
                break
            del self._seen[key]

    def __len__(self) -> int:
        return len(self._seen)
