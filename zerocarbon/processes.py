"""Run the service's own long-lived commands (bridge, worker, sink, view) as child processes.

The demo, the tests and the benchmarks start them exactly as an operator would, with the
`zerocarbon` command, and wait for the log line that says they are ready: all through here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

# The log line each long-lived command writes once it serves, and how long it may take.
READY = {
    "bridge": r"subscribed to .* at QoS 1",
    "worker": r"\[\^Worker\]: Ready",
    "sink": r"sink ready: ",
    "view": r"operators' view ready: ",
    "share": r"sharing ready: ",
}
READY_WITHIN = {"bridge": 60.0, "worker": 120.0, "sink": 60.0, "view": 30.0, "share": 60.0}


def log_size(log_file: Path) -> int:
    """Where a child's output will start in ``log_file`` (logs are appended to)."""
    return log_file.stat().st_size if log_file.exists() else 0


def wait_ready(
    proc: subprocess.Popen[bytes], log_file: Path, offset: int = 0, timeout: float | None = None
) -> None:
    """Wait for the ready line of the command ``proc`` runs (``spawn_command``'s child)."""
    command = str(proc.args[3]) if isinstance(proc.args, list) else ""
    wait_for_log(proc, log_file, READY[command], timeout or READY_WITHIN[command], offset)


def start_service(
    args: list[str], log_file: Path, env: dict[str, str] | None = None, timeout: float | None = None
) -> subprocess.Popen[bytes]:
    """``zerocarbon ARGS...`` (bridge, worker, sink or view) once it says it is ready; stopped,
    and the error raised, if it does not."""
    offset = log_size(log_file)
    proc = spawn_command(args, log_file, env)
    try:
        wait_ready(proc, log_file, offset, timeout)
    except BaseException:
        stop_child(proc)
        raise
    return proc


def spawn_command(
    args: list[str], log_file: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``zerocarbon ARGS...`` with its output appended to ``log_file``; ``env`` adds
    variables (ZC_* settings) to this process's environment."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "zerocarbon.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )


def wait_for_log(
    proc: subprocess.Popen[bytes], log_file: Path, pattern: str, timeout: float, offset: int = 0
) -> None:
    """Wait until ``pattern`` appears in the log after byte ``offset``; fail if the child dies."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_file.read_bytes()[offset:].decode(errors="replace") if log_file.exists() else ""
        if regex.search(text):
            return
        if proc.poll() is not None:
            raise RuntimeError(
                f"{proc.args!r} exited with {proc.returncode} before "
                f"/{pattern}/ appeared; log {log_file}:\n{text[-3000:]}"
            )
        time.sleep(0.25)
    raise TimeoutError(f"/{pattern}/ not seen in {log_file} within {timeout:.0f}s")


def stop_child(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """SIGTERM, then SIGKILL if it lingers; return the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
