"""Points waiting for InfluxDB, on disk: numbered segment files, oldest written first.

A segment is written to a temporary name, fsynced, then renamed, so after a crash a
segment is either whole or absent; it is deleted only once InfluxDB has accepted it. That
makes a segment durable enough for the sink to commit the Kafka offsets it covers.

Two kinds of methods, so the disk never blocks the sink's event loop: ``write``,
``read_lines`` and ``delete`` only touch files (the sink runs them in a thread, one write
at a time); ``added``, ``removed``, ``oldest`` and the counters are the bookkeeping, kept
on the loop. A spool also has a size limit: a segment that would take it past
``max_bytes`` is refused like a full disk (``SpoolFull``), before anything is written.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".lp"


class SpoolFull(OSError):
    """The spool reached its size limit (``ZC_SINK_SPOOL_MAX_BYTES``): treated as a full disk."""

    def __init__(self, needed: int, used: int, limit: int) -> None:
        self.needed = needed  # the bytes of the segment refused
        super().__init__(
            errno.ENOSPC,
            f"the disk buffer would reach {used + needed} bytes, beyond its limit of {limit} "
            "(ZC_SINK_SPOOL_MAX_BYTES)",
        )


@dataclass(frozen=True)
class Segment:
    """A segment on disk: its lines stay there until a write reads them (``read_lines``)."""

    path: Path
    size_bytes: int
    point_count: int


class DiskSpool:
    """A FIFO of line-protocol segments in one folder (one sink process per folder)."""

    def __init__(self, folder: Path, max_bytes: int | None = None) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        folder.mkdir(parents=True, exist_ok=True)
        for leftover in folder.glob("*.tmp"):  # a crash while writing: never renamed, never counted
            leftover.unlink()
        self._segments = [
            Segment(path, path.stat().st_size, path.read_bytes().count(b"\n"))
            for path in sorted(folder.glob(f"*{SUFFIX}"))
        ]
        self._next = int(self._segments[-1].path.stem) + 1 if self._segments else 1
        self.size_bytes = sum(s.size_bytes for s in self._segments)
        self.point_count = sum(s.point_count for s in self._segments)

    def __len__(self) -> int:
        return len(self._segments)

    # Files only: safe in a thread while the loop keeps the bookkeeping.

    def write(self, lines: list[str]) -> Segment:
        """Write the next segment durably (fsync of the file and of the folder); register it
        with ``added``. Raises ``SpoolFull`` past the size limit, ``OSError`` from the disk."""
        path = self.folder / f"{self._next:012d}{SUFFIX}"
        data = ("\n".join(lines) + "\n").encode()
        if self.max_bytes is not None and self.size_bytes + len(data) > self.max_bytes:
            raise SpoolFull(len(data), self.size_bytes, self.max_bytes)
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)  # half a segment would only take the space a retry needs
            raise
        folder_fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(folder_fd)
        finally:
            os.close(folder_fd)
        return Segment(path, len(data), len(lines))

    def read_lines(self, segment: Segment) -> list[str]:
        return segment.path.read_bytes().decode().splitlines()

    def delete(self, segment: Segment) -> None:
        segment.path.unlink(missing_ok=True)

    # Bookkeeping: on the loop.

    def added(self, segment: Segment) -> None:
        """A segment ``write`` made is now the newest of the spool."""
        self._next = int(segment.path.stem) + 1
        self._segments.append(segment)
        self.size_bytes += segment.size_bytes
        self.point_count += segment.point_count

    def oldest(self) -> Segment | None:
        return self._segments[0] if self._segments else None

    def removed(self, segment: Segment) -> None:
        """Forget a segment InfluxDB has accepted (its file deleted with ``delete``)."""
        self._segments.remove(segment)
        self.size_bytes -= segment.size_bytes
        self.point_count -= segment.point_count

    # Both at once, where blocking does not matter (tests, tools).

    def append(self, lines: list[str]) -> Segment:
        segment = self.write(lines)
        self.added(segment)
        return segment

    def remove(self, segment: Segment) -> None:
        self.delete(segment)
        self.removed(segment)
