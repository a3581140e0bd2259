"""What the worker's ``/health`` says, and why the worker stops when one of its loops dies.

faust restarts a crashed agent (its supervisor) and skips the record that raised; a crashed
timer only logs. Either way the process looks alive while a stage has stopped or lost a
record. So a loop that dies is fatal here: it is recorded, ``/health`` answers ``fail`` with
its name and error, and the worker stops as on SIGTERM (the indicator state is checkpointed
on the way out) and exits non-zero, so that its supervisor restarts it; what was not
acknowledged is read again. A loop that lives but has not completed a round for a while (the
flush waiting for an absent Kafka) is a ``warn``: restarting would not bring Kafka back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

EXIT_LOOP_DIED = 70
"""The worker's exit status when one of its loops died (EX_SOFTWARE: an internal error)."""

STALLED_AFTER_SECONDS = 30.0


@dataclass
class WorkerHealth:
    """The worker's loops as ``/health`` reports them; ``on_death`` stops the process."""

    on_death: Callable[[], None] = lambda: None
    stalled_after_seconds: float = STALLED_AFTER_SECONDS
    clock: Callable[[], float] = time.monotonic
    died: dict[str, str] = field(default_factory=dict)
    rounds: dict[str, float] = field(default_factory=dict)

    def round_done(self, loop: str) -> None:
        """``loop`` completed one round (a flush): it is alive and moving."""
        self.rounds[loop] = self.clock()

    def loop_died(self, loop: str, error: BaseException) -> None:
        """Record the first death of ``loop`` and stop the worker (once)."""
        if loop in self.died:
            return
        first = not self.died
        self.died[loop] = f"{type(error).__name__}: {error}"
        log.critical(
            "the worker's %s loop died (%r): the worker stops and exits %d", loop, error, EXIT_LOOP_DIED
        )
        if first:
            self.on_death()

    @property
    def failed(self) -> bool:
        return bool(self.died)

    def report(self) -> dict[str, Any]:
        """``pass``, ``warn`` (a loop alive but without a round for a while) or ``fail`` (a loop died)."""
        now = self.clock()
        checks: dict[str, dict[str, Any]] = {}
        for loop, at in self.rounds.items():
            age = now - at
            stalled = age > self.stalled_after_seconds
            checks[loop] = {"status": "warn" if stalled else "pass", "last_round_seconds_ago": round(age, 1)}
        for loop, error in self.died.items():
            checks[loop] = {"status": "fail", "error": error}
        statuses = {check["status"] for check in checks.values()}
        overall = "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
        return {"status": overall, "checks": checks}
