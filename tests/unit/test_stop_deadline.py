"""A worker whose loop died exits within the deadline even when its stop hangs."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading

from streams.stop_deadline import stop_within

HUNG_STOP = textwrap.dedent(
    """
    import signal, sys, time
    from streams.stop_deadline import stop_within
    asked = []
    signal.signal(signal.SIGTERM, lambda *_: asked.append(True))  # a stop that never ends
    stop = stop_within(0.5, 70)
    stop()
    stop()  # a second death: nothing more
    time.sleep(0.2)
    print("asked", len(asked), flush=True)
    time.sleep(30)
    sys.exit(0)
    """
)

PROMPT_STOP = textwrap.dedent(
    """
    import signal, sys
    from streams.stop_deadline import stop_within
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))  # stops at once, with its own status
    stop_within(5.0, 70)()
    """
)


def run(program: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=20, check=False
    )


def test_a_stop_that_hangs_is_ended_with_the_status_after_the_deadline() -> None:
    done = run(HUNG_STOP)
    assert done.returncode == 70, done.stderr
    assert done.stdout.strip() == "asked 1"
    assert "did not stop within 0.5 s of a loop's death: it exits 70 now" in done.stderr


def test_a_stop_in_time_keeps_its_own_status() -> None:
    done = run(PROMPT_STOP)
    assert done.returncode == 3, done.stderr


def test_the_deadline_ends_the_process_through_the_exit_it_is_given() -> None:
    ended = threading.Event()
    statuses: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        stop = stop_within(0.05, 70, exit_now=lambda status: (statuses.append(status), ended.set()))
        stop()
        assert ended.wait(5)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert statuses == [70]
