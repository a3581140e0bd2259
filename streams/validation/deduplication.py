"""Recently seen event ids, to count and drop resent events within a horizon."""

from __future__ import annotations

from array import array


class RecentEventIds:
    """(producer, event id) pairs seen in the last ``horizon`` seconds, at most ``max_size``.

    Bounded both ways, and in memory allocated once: a duplicate arriving after the horizon
    (or after eviction) passes, and downstream writes are idempotent anyway.

    A pair is remembered by its 64-bit hash, not its strings. Two different pairs share a hash
    with a probability of about 3e-8 per million pairs held; the second would be counted as a
    duplicate, never dropped unseen.

    The hashes live in flat arrays sized for ``max_size`` at construction (32 bytes a pair: a
    ring of hashes and times in arrival order, and an open-addressing table at most half full):
    a set and two deques took about 120 bytes a pair, allocated as the pairs came, so the
    worker's memory grew for the 8 minutes a soak at 2 000 readings/s took to fill a million
    (issue 19; a soak judges memory growth after 5 minutes). The table is probed linearly and
    a pair leaves it by backward shift, so no tombstones accumulate.
    """

    def __init__(self, horizon: float, max_size: int = 1_000_000) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.horizon = horizon
        self.max_size = max_size
        # A power of two above twice max_size: at most max_size + 1 pairs are held (one is
        # added before the oldest goes), so a probe always meets an empty slot.
        slots = 1 << (2 * max_size).bit_length()
        self._mask = slots - 1
        self._table = array("q", bytes(8 * slots))  # 0: an empty slot; a hash 0 is stored as 1
        self._hashes = array("q", bytes(8 * max_size))  # the ring, oldest at _head
        self._times = array("d", bytes(8 * max_size))
        self._head = 0
        self._count = 0

    def seen_before(self, producer_id: str, event_id: str, now: float) -> bool:
        """Record the pair; True if it was already recorded within the horizon."""
        if self._count and self._times[self._head] < now - self.horizon:
            self._expire(now)
        key = hash((producer_id, event_id)) or 1
        table, mask = self._table, self._mask
        slot = key & mask
        while (found := table[slot]) != 0:
            if found == key:
                return True
            slot = (slot + 1) & mask
        table[slot] = key
        if self._count == self.max_size:
            self._forget_oldest()
        tail = (self._head + self._count) % self.max_size
        self._hashes[tail] = key
        self._times[tail] = now
        self._count += 1
        return False

    def _expire(self, now: float) -> None:
        limit = now - self.horizon
        times = self._times
        while self._count and times[self._head] < limit:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        self._remove(self._hashes[self._head])
        self._head = (self._head + 1) % self.max_size
        self._count -= 1

    def _remove(self, key: int) -> None:
        """Take ``key`` out of the table and shift back the entries after it that would no
        longer be found past the hole (Knuth's algorithm R)."""
        table, mask = self._table, self._mask
        hole = key & mask
        while table[hole] != key:
            hole = (hole + 1) & mask
        slot = hole
        while True:
            slot = (slot + 1) & mask
            found = table[slot]
            if found == 0:
                break
            home = found & mask
            # It stays when its home is cyclically in (hole, slot]: the probe from there
            # reaches it without crossing the hole.
            stays = hole < home <= slot if hole <= slot else (home > hole or home <= slot)
            if not stays:
                table[hole] = found
                hole = slot
        table[hole] = 0

    def __len__(self) -> int:
        return self._count
