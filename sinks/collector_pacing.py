"""The garbage collector paced for a stream of short-lived objects (the sink's records).

CPython collects its youngest generation every 700 net allocations. A ``getmany`` batch
keeps 5 000 records alive while the sink formats them, so each collection rescans records
about to be freed and promotes them, and the older generations rescan them again: 0.5 to
1 µs per point, a tenth of the sink's CPU (bench/README.md, "Sink"). With 10 000, a batch
is mostly freed before a collection sees it. What the process built before the loop
(modules, settings, a caller's data) lives on: frozen, a full collection skips it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 10_000


@contextmanager
def paced_collector() -> Iterator[None]:
    """Within: what exists now is frozen and the youngest generation is collected less often."""
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()  # back under collection: garbage among it is freed again
