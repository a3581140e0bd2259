"""Recently seen event ids, to count and drop resent events within a horizon."""

from __future__ import annotations

from collections import deque


class RecentEventIds:
    """(producer, event id) pairs seen in the last ``horizon`` seconds, at most ``max_size``.

    Bounded both ways so memory stays flat under any traffic; a duplicate arriving after
    the horizon (or after eviction) passes, and downstream writes are idempotent anyway.

    A pair is remembered by its 64-bit hash, not its strings: a pair took about 260 bytes as
    a tuple of strings and takes about 120 as an int (measured with tracemalloc; with a
    million pairs this was most of the worker's peak memory, bench/suite.py). Two different
    pairs share a hash with a probability of about 3e-8 per million pairs held; the second
    would be counted as a duplicate, never dropped unseen.
    """

    def __init__(self, horizon: float, max_size: int = 1_000_000) -> None:
        self.horizon = horizon
        self.max_size = max_size
        # A set for membership and two queues in arrival order for expiry and eviction:
        # cheaper per event than an OrderedDict scanned from its head on every call (this runs
        # once per accepted event, bench/validation_throughput.py). A hash is in all or none.
        self._seen: set[int] = set()
        self._times: deque[float] = deque()
        self._keys: deque[int] = deque()

    def seen_before(self, producer_id: str, event_id: str, now: float) -> bool:
        """Record the pair; True if it was already recorded within the horizon."""
        times = self._times
        if times and times[0] < now - self.horizon:
            self._expire(now)
        key = hash((producer_id, event_id))
        seen = self._seen
        if key in seen:
            return True
        seen.add(key)
        times.append(now)
        self._keys.append(key)
        if len(seen) > self.max_size:
            times.popleft()
            seen.discard(self._keys.popleft())
        return False

    def _expire(self, now: float) -> None:
        limit = now - self.horizon
        times, keys, seen = self._times, self._keys, self._seen
        while times and times[0] < limit:
            times.popleft()
            seen.discard(keys.popleft())

    def __len__(self) -> int:
        return len(self._seen)
