"""Counts the restarts supervisord makes, for `zerocarbon ps`: a supervisord event listener.

supervisord restarts a process that exits (with backoff when it dies during start-up) but
keeps no count; it tells a listener each state change. A process entering STARTING from
EXITED or BACKOFF is a restart (from STOPPED: a start asked for). The counts are rewritten
whole, atomically, to the file given as argument at each one.

The listener protocol (supervisord's documentation, "Events"): write ``READY``, read one
header line and the payload of its ``len``, answer ``RESULT 2\\nOK``, again. Standard output
is the protocol's: anything else goes to standard error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO

RESTARTING_FROM = {"EXITED", "BACKOFF"}


def fields(line: str) -> dict[str, str]:
    """``key:value key:value`` as a dict (the header line and the payload's first line)."""
    return dict(token.split(":", 1) for token in line.split() if ":" in token)


def is_restart(event: str, payload: str) -> str | None:
    """The process a state-change event restarts, if it is one."""
    if event != "PROCESS_STATE_STARTING":
        return None
    found = fields(payload.splitlines()[0] if payload else "")
    return found.get("processname") if found.get("from_state") in RESTARTING_FROM else None


def read_counts(path: Path) -> dict[str, int]:
    try:
        counts = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in counts.items()} if isinstance(counts, dict) else {}


def write_counts(path: Path, counts: dict[str, int]) -> None:
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(counts, sort_keys=True))
    partial.replace(path)


def listen(path: Path, stdin: IO[str], stdout: IO[str]) -> None:
    """Serve supervisord until it closes our standard input."""
    counts = read_counts(path)
    while True:
        stdout.write("READY\n")
        stdout.flush()
        header = stdin.readline()
        if not header:
            return
        meta = fields(header)
        payload = stdin.read(int(meta.get("len", "0")))
        name = is_restart(meta.get("eventname", ""), payload)
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
            write_counts(path, counts)
            print(f"restart of {name}: {counts[name]}", file=sys.stderr, flush=True)
        stdout.write("RESULT 2\nOK")
        stdout.flush()


if __name__ == "__main__":
    listen(Path(sys.argv[1]), sys.stdin, sys.stdout)
