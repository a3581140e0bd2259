"""Where a partition's closed windows wait for late readings: what such a store is, and one in memory.

A window closed on event time is published final, then kept so that a reading arriving
later, within its size's horizon (window_state.CORRECTION_HORIZON_SECONDS), corrects it:
a year of hourly and 15-minute windows per series is far too much for memory and for the
partition's checkpoint, so the windows live in a store (closed_windows_rocksdb.py on a
worker, ``MemoryClosedWindows`` in tests and benchmarks) and only those changed since the
store's last commit travel in the checkpoint. The store keeps each meter's recent indexes
(meter_indexes.py) the same way, one record per meter: up to 256 indexes per meter would make
every checkpoint of a partition of meters hundreds of kilobytes.

Commits follow the checkpoints (engine.py, invariant 7): a store is always exactly the state
of one delivered checkpoint, named by its lineage (``epoch``, drawn when a partition's state
starts empty) and ``generation`` (how many commits that lineage made). A checkpoint of
generation G carries the windows changed since commit G - 1, so a restored partition whose
store is at G - 1 commits them and goes on; a store from another lineage is wiped when the
checkpoint's lineage never committed (it carries every closed window of its own); anything
else means the store missed commits, and correcting from it would publish wrong totals:
``StoreOutOfStep``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from streams.indicators.window_sums import Accumulator, SlotKey, WindowKey, commune_of


@dataclass(frozen=True, slots=True)
class StoreVersion:
    """Which delivered checkpoint a store holds: its lineage and the commits it made."""

    epoch: str
    generation: int


class StoreOutOfStep(RuntimeError):
    """The store does not hold the closed windows the checkpoint was taken with."""


class ClosedWindows(Protocol):
    """A partition's committed closed windows. Reads return copies: the caller changes its
    own, and hands them back to ``commit`` once a checkpoint that includes them is delivered."""

    def version(self) -> StoreVersion | None:
        """The version committed last; None for an empty store."""
        ...

    def get(self, key: WindowKey) -> Accumulator | None: ...

    def in_slot(self, slot: SlotKey) -> list[tuple[WindowKey, Accumulator]]:
        """Every window of ``indicator`` in the commune's window (``size``, ``start``)."""
        ...

    def meter_indexes(self) -> dict[str, bytes]:
        """Every meter's indexes, as committed (read once, when a partition is restored)."""
        ...

    def commit(
        self,
        changed: Mapping[WindowKey, Accumulator],
        version: StoreVersion,
        forget_before: Mapping[int, int],
        indexes: Mapping[str, bytes] = {},  # read only
    ) -> None:
        """Atomically: write ``changed`` and the meters' ``indexes``, forget every window of
        size s that starts before ``forget_before[s]``, and record ``version``."""
        ...

    def wipe(self) -> None:
        """Forget everything (a store left by another lineage)."""
        ...

    def close(self) -> None: ...


def reconcile(
    store: ClosedWindows,
    checkpoint: StoreVersion,
    carried: Mapping[WindowKey, Accumulator],
    carried_indexes: Mapping[str, bytes] = {},  # read only
) -> bool:
    """Bring ``store`` to the checkpoint's version, given the windows and meter indexes the
    checkpoint carries (changed since the commit before it). True when it committed them (the
    caller may then forget them), False when the store already held them. ``StoreOutOfStep``
    otherwise."""
    held = store.version()
    if held == checkpoint:
        return False
    same_lineage = held is not None and held.epoch == checkpoint.epoch
    if same_lineage and held is not None and held.generation == checkpoint.generation - 1:
        store.commit(carried, checkpoint, {}, carried_indexes)
        return True
    if not same_lineage and checkpoint.generation - (1 if carried or carried_indexes else 0) == 0:
        # Its lineage never committed, so the checkpoint carries every window the lineage
        # closed: whatever the store holds is another lineage's (a partition started afresh,
        # an earlier checkpoint format).
        store.wipe()
        store.commit(carried, checkpoint, {}, carried_indexes)
        return True
    raise StoreOutOfStep(
        f"the closed windows held are {_described(held)}, the checkpoint is at generation "
        f"{checkpoint.generation} of lineage {checkpoint.epoch}: the store missed commits (its "
        "folder was lost or replaced, or another host's worker had the partition). Corrections "
        "from it would publish wrong totals. Put the folder back (ZC_INDICATOR_STORE_DIR), or "
        "start the partition's figures afresh (docs/indicators.md, 'Late readings')."
    )


def _described(version: StoreVersion | None) -> str:
    if version is None:
        return "none (an empty store)"
    return f"at generation {version.generation} of lineage {version.epoch}"


class MemoryClosedWindows:
    """The store in a dict: for tests and benchmarks, which need no durability."""

    def __init__(self) -> None:
        self._windows: dict[WindowKey, tuple[int, int, int]] = {}
        self._slots: dict[SlotKey, set[WindowKey]] = {}
        self._indexes: dict[str, bytes] = {}
        self._version: StoreVersion | None = None

    def version(self) -> StoreVersion | None:
        return self._version

    def get(self, key: WindowKey) -> Accumulator | None:
        found = self._windows.get(key)
        return None if found is None else Accumulator(*found)

    def in_slot(self, slot: SlotKey) -> list[tuple[WindowKey, Accumulator]]:
        return [(key, Accumulator(*self._windows[key])) for key in self._slots.get(slot, ())]

    def meter_indexes(self) -> dict[str, bytes]:
        return dict(self._indexes)

    def commit(
        self,
        changed: Mapping[WindowKey, Accumulator],
        version: StoreVersion,
        forget_before: Mapping[int, int],
        indexes: Mapping[str, bytes] = {},  # read only
    ) -> None:
        self._indexes.update(indexes)
        for key, acc in changed.items():
            if key not in self._windows:
                self._slots.setdefault(slot_of(key), set()).add(key)
            self._windows[key] = (acc.nanos, acc.count, acc.revision)
        if forget_before:
            self._forget(k for k in self._windows if k[3] < forget_before.get(k[2], k[3]))
        self._version = version

    def _forget(self, keys: Iterable[WindowKey]) -> None:
        for key in list(keys):
            del self._windows[key]
            slot = self._slots[slot_of(key)]
            slot.discard(key)
            if not slot:
                del self._slots[slot_of(key)]

    def wipe(self) -> None:
        self._windows.clear()
        self._slots.clear()
        self._indexes.clear()
        self._version = None

    def close(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        return len(self._windows)


def slot_of(key: WindowKey) -> SlotKey:
    indicator, dims, size, start = key
    return (indicator, commune_of(dims) or "", size, start)
