"""The sink process's loops run side by side (the sink, the territory rollup): the first one
to die stops the others and the process, and the status file says which and why.

``asyncio.gather`` raised the first error too, but left the failure unnamed in the status
file, and a loop that *returned* early (without an error) would have left the process half
alive, still saying it was ready. A supervisor restarts a process that exits non-zero;
one that lingers half alive it never restarts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

Loop = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
# What the other loops get to stop cleanly (a last write, a commit) once one has died.
STOP_GRACE_SECONDS = 10.0


class LoopDied(RuntimeError):
    """One of the process's loops ended before it was asked to stop."""

    def __init__(self, loop: str, error: BaseException | None) -> None:
        reason = repr(error) if error is not None else "returned before the process was asked to stop"
        super().__init__(f"the {loop} loop died ({reason}): the process stops so that it is restarted")
        self.loop = loop


async def run_until_one_dies(
    loops: Mapping[str, Loop], stop: asyncio.Event, died: Callable[[str, BaseException], None]
) -> None:
    """Run every loop until ``stop`` is set; if one ends first, report it to ``died``, stop the
    others (cancelled after ``STOP_GRACE_SECONDS``) and raise ``LoopDied``."""
    tasks: dict[asyncio.Task[None], str] = {
        asyncio.create_task(run(stop), name=name): name for name, run in loops.items()
    }
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
        ended = [t for t in tasks if t in done]
        if stop.is_set():  # asked to stop: every loop ends on its own (an error in doing so is raised)
            for task in tasks:
                await task
            return
        first = next((t for t in ended if t.exception() is not None), ended[0])
        error = first.exception()
        failure = LoopDied(tasks[first], error)
        died(tasks[first], error if error is not None else failure)
        stop.set()
        _, late = await asyncio.wait(tasks, timeout=STOP_GRACE_SECONDS)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # their errors, if any, follow the first
        raise failure from error
    finally:
        stopping.cancel()
