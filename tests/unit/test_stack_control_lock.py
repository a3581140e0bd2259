"""`stack up` and `stack down` on one instance run one at a time (stack/control.py): two at
once each saw influxd stopped, each started one, and the second died on the first's files."""

from __future__ import annotations

import threading
from pathlib import Path

from stack import control


def test_a_second_control_waits_for_the_first(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first_in, release, second_in = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        with control.one_at_a_time(home):
            first_in.set()
            release.wait(10)

    def enter() -> None:
        with control.one_at_a_time(home):
            second_in.set()

    holder = threading.Thread(target=hold)
    holder.start()
    assert first_in.wait(10)
    waiter = threading.Thread(target=enter)
    waiter.start()
    assert not second_in.wait(0.5), "the second entered while the first held the instance"
    release.set()
    assert second_in.wait(10), "the second never entered after the first left"
    holder.join()
    waiter.join()
