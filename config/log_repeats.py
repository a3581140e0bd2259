"""One line per problem, not ten a second: aiokafka logs each failed reconnection at ERROR,
every 100 ms while Kafka is away (issue 19), which buries the lines that say what to do.

The first record of a kind (logger, level, message template) passes; the same kind again
within ``window_seconds`` is counted instead, and the count rides on the next one that passes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

KINDS_REMEMBERED = 1000


class RepeatedRecords(logging.Filter):
    """Thin out records of loggers under ``prefix`` that repeat within ``window_seconds``."""

    def __init__(
        self,
        prefix: str = "aiokafka",
        window_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.prefix, self.window_seconds, self.clock = prefix, window_seconds, clock
        self._passed_at: dict[tuple[str, int, str], float] = {}
        self._held_back: dict[tuple[str, int, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefix):
            return True
        kind = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        passed_at = self._passed_at.get(kind)
        if passed_at is not None and now - passed_at < self.window_seconds:
            self._held_back[kind] = self._held_back.get(kind, 0) + 1
            return False
        if len(self._passed_at) >= KINDS_REMEMBERED and kind not in self._passed_at:
            self._passed_at.clear()
            self._held_back.clear()
        self._passed_at[kind] = now
        if held_back := self._held_back.pop(kind, 0):
            record.msg = f"{record.getMessage()} (and {held_back} more like it since the last one shown)"
            record.args = ()
        return True


def thin_out_repeats(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of ``logger`` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RepeatedRecords) for f in handler.filters):
            handler.addFilter(RepeatedRecords())
