"""aiokafka's reconnection errors, thinned out: one line per window, with the count held back."""

from __future__ import annotations

import logging

from config.log_repeats import RepeatedRecords


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_repeated_error_passes_once_per_window_and_says_how_many_were_held_back() -> None:
    clock = Clock()
    repeats = RepeatedRecords(window_seconds=10, clock=clock)
    passed = []
    for step in range(250):  # every 100 ms for 25 s, as aiokafka does while Kafka is away
        clock.now = step * 0.1
        line = record("aiokafka.conn", "Unable connect to node with id %s: %s", 1, "refused")
        if repeats.filter(line):
            passed.append(line.getMessage())
    assert passed == [
        "Unable connect to node with id 1: refused",
        "Unable connect to node with id 1: refused (and 99 more like it since the last one shown)",
        "Unable connect to node with id 1: refused (and 99 more like it since the last one shown)",
    ]


def test_other_loggers_and_other_messages_are_never_held_back() -> None:
    repeats = RepeatedRecords(window_seconds=10, clock=Clock())
    assert all(repeats.filter(record("zerocarbon.bridge", "Kafka away")) for _ in range(5))
    assert repeats.filter(record("aiokafka.client", "first kind"))
    assert repeats.filter(record("aiokafka.client", "second kind"))
    assert repeats.filter(record("aiokafka.client", "first kind", level=logging.WARNING))
    assert not repeats.filter(record("aiokafka.client", "first kind"))
