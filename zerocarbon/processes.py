"""Run the service's own long-lived commands (bridge, worker) as child processes.

The demo and the integration tests start them exactly as an operator would, with the
`zerocarbon` command, and wait for the log line that says they are ready.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path


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
