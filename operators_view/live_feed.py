"""The server-sent events feed: one refresh loop shared by every connected browser, running
only while at least one is connected (idle, the page costs its sources nothing)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

log = logging.getLogger("zerocarbon.view")


class SnapshotSource(Protocol):
    """What the feed polls: opened for the first watcher, closed after the last."""

    async def open(self) -> None: ...

    async def snapshot(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


class LiveFeed:
    """Builds a snapshot every ``refresh_seconds`` while someone watches and hands the newest
    to each watcher (a slow browser skips to the newest, it never queues old ones)."""

    def __init__(self, source: SnapshotSource, refresh_seconds: float) -> None:
        self._source = source
        self._refresh = refresh_seconds
        self._watchers: set[asyncio.Queue[str | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._latest: str | None = None
        self.snapshots_built = 0  # the cost meter: how many times the sources were polled

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    @property
    def polling(self) -> bool:
        return self._task is not None and not self._task.done()

    @contextlib.asynccontextmanager
    async def watch(self) -> AsyncIterator[asyncio.Queue[str | None]]:
        """A queue of snapshots (JSON text) for one browser; ``None`` means the server stops."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1)
        if self._latest is not None and self.polling:
            queue.put_nowait(self._latest)  # a newcomer sees the page at once
        self._watchers.add(queue)
        if not self.polling:
            self._task = asyncio.create_task(self._poll(), name="operators-view-feed")
        try:
            yield queue
        finally:
            self._watchers.discard(queue)

    async def close(self) -> None:
        """Tell every watcher to stop and wait for the loop to close its sources."""
        for queue in list(self._watchers):
            self._offer(queue, None)
        self._watchers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        # The outer loop: a browser that connects while the sources are being closed (the last
        # one just left) has them opened again rather than waiting for a loop that is ending.
        while self._watchers:
            await self._source.open()
            try:
                while self._watchers:
                    await self._refresh_once()
                    await asyncio.sleep(self._refresh)
            finally:
                self._latest = None
                await self._source.close()

    async def _refresh_once(self) -> None:
        try:
            snapshot = await self._source.snapshot()
            text = json.dumps(snapshot, ensure_ascii=False, allow_nan=False, default=str)
        except Exception:  # a bug in one refresh must not end the feed: log it, try again
            log.exception("operators' view: refresh failed")
            return
        self.snapshots_built += 1
        self._latest = text
        for queue in list(self._watchers):
            self._offer(queue, text)

    @staticmethod
    def _offer(queue: asyncio.Queue[str | None], item: str | None) -> None:
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(item)
