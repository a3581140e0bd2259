"""Workers a test starts, kills and restarts itself (the `worker` fixture runs one per module)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from pathlib import Path

from config.settings import Settings
from zerocarbon.demo import worker_counters
from zerocarbon.processes import start_service


def start_worker(log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`zerocarbon worker`, appending to ``log``, once it says it is ready."""
    return start_service(["worker"], log, env)


async def wait_counted(settings: Settings, at_least: int, timeout: float = 90) -> None:
    """Until the running worker's indicator stage has counted ``at_least`` readings."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        with contextlib.suppress(OSError):  # OSError: the worker's web server is not up yet
            if worker_counters(settings)["indicators"].get("counted", 0) >= at_least:
                return
        await asyncio.sleep(0.05)
    raise TimeoutError("the worker counted nothing")
