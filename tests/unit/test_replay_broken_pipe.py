"""`zerocarbon replay … --dry-run | head`, as docs/devices.md shows it, stops quietly (issue 19)."""

from __future__ import annotations

import signal
import subprocess
import sys


def test_a_dry_run_whose_reader_leaves_early_ends_without_a_traceback() -> None:
    # Far more than a pipe's buffer (64 KiB): the replay is still writing when the reader leaves.
    command = [
        sys.executable,
        "-m",
        "zerocarbon.cli",
        "replay",
        "--dry-run",
        "--mapping",
        "larochelle-parking",
    ]

    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as replay:
        assert replay.stdout is not None and replay.stderr is not None
        first = replay.stdout.readline()
        replay.stdout.close()  # as `head -1` does
        stderr = replay.stderr.read().decode()
        code = replay.wait(timeout=60)
    assert first.startswith(b"{")
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert code == 128 + signal.SIGPIPE
