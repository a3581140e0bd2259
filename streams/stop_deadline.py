"""A worker whose loop died leaves within a deadline, whatever faust's stop does.

After a loop died the worker stops as on SIGTERM and skips its last checkpoint (the state may
be what failed), so nothing is gained by waiting: what was not acknowledged is read again by the
next start. faust's stop has hung once after such a death (a fresh-clone CI: the consumer had
left its group, and the process was still there 180 s later), and a supervisor restarts only a
process that has exited. So the SIGTERM comes with a deadline, after which the process exits
with the same status, at once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

STOP_DEADLINE_SECONDS = 30.0


def stop_within(
    deadline_seconds: float, status: int, exit_now: Callable[[int], None] = os._exit
) -> Callable[[], None]:
    """A callable that asks the process to stop (its SIGTERM handler), then, if it is still
    there after ``deadline_seconds``, ends it with ``status``; its later calls do nothing."""
    started = threading.Event()

    def overdue() -> None:
        log.critical(
            "the worker did not stop within %g s of a loop's death: it exits %d now", deadline_seconds, status
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        exit_now(status)

    def stop() -> None:
        if started.is_set():
            return
        started.set()
        timer = threading.Timer(deadline_seconds, overdue)
        timer.daemon = True  # a process that stops in time is not held by it
        timer.start()
        os.kill(os.getpid(), signal.SIGTERM)

    return stop
