"""Waiting for a condition a real service makes true, with a deadline that names it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(what: str, found: Callable[[], bool], timeout: float = 60, every: float = 1.0) -> None:
    """Return once ``found()`` holds; fail saying ``what`` did not happen within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not found():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        await asyncio.sleep(every)
