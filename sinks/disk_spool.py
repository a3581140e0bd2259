"""Points waiting for InfluxDB, on disk: numbered segment files, oldest written first.

A segment is written to a temporary name, fsynced, then renamed, so after a crash a
segment is either whole or absent; it is deleted only once InfluxDB has accepted it. That
makes a segment durable enough for the sink to commit the Kafka offsets it covers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".lp"


@dataclass(frozen=True)
class Segment:
    path: Path
    lines: list[str]
    size_bytes: int


class DiskSpool:
    """A FIFO of line-protocol segments in one folder (one sink process per folder)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        for leftover in folder.glob("*.tmp"):  # a crash while writing: never renamed, never counted
            leftover.unlink()
        self._paths = sorted(folder.glob(f"*{SUFFIX}"))
        self._next = int(self._paths[-1].stem) + 1 if self._paths else 1
        self.size_bytes = sum(p.stat().st_size for p in self._paths)
        self.point_count = sum(p.read_bytes().count(b"\n") for p in self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def append(self, lines: list[str]) -> Path:
        """Write one segment durably (fsync of the file and of the folder)."""
        path = self.folder / f"{self._next:012d}{SUFFIX}"
        tmp = path.with_suffix(".tmp")
        data = ("\n".join(lines) + "\n").encode()
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        folder_fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(folder_fd)
        finally:
            os.close(folder_fd)
        self._next += 1
        self._paths.append(path)
        self.size_bytes += len(data)
        self.point_count += len(lines)
        return path

    def oldest(self) -> Segment | None:
        if not self._paths:
            return None
        path = self._paths[0]
        data = path.read_bytes()
        return Segment(path, data.decode().splitlines(), len(data))

    def remove(self, segment: Segment) -> None:
        """Forget a segment InfluxDB has accepted."""
        segment.path.unlink(missing_ok=True)
        self._paths.remove(segment.path)
        self.size_bytes -= segment.size_bytes
        self.point_count -= len(segment.lines)
