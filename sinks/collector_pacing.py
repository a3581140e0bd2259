"""The garbage collector paced for a stream of short-lived objects (the sink's records).

With CPython's young collection every 700 net allocations, a ``getmany`` batch's records are
rescanned and promoted just before they are freed (bench/README.md, "Sink"); with 10 000 a
batch is mostly gone first. What was built before the loop is frozen: full collections skip it.
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
