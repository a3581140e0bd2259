"""The worker's health: a dead loop fails it and stops the worker once; a slow one only warns."""

from __future__ import annotations

from streams.worker_health import WorkerHealth


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_worker_whose_loops_complete_rounds_passes() -> None:
    clock = Clock()
    health = WorkerHealth(clock=clock, stalled_after_seconds=30)
    health.round_done("indicator flush")
    clock.now += 29
    assert health.report() == {
        "status": "pass",
        "checks": {"indicator flush": {"status": "pass", "last_round_seconds_ago": 29.0}},
    }


def test_a_loop_without_a_round_for_longer_than_the_limit_warns_and_recovers() -> None:
    clock = Clock()
    health = WorkerHealth(clock=clock, stalled_after_seconds=30)
    health.round_done("indicator flush")
    clock.now += 31
    assert health.report()["status"] == "warn" and not health.failed
    health.round_done("indicator flush")
    assert health.report()["status"] == "pass"


def test_the_first_dead_loop_stops_the_worker_once_and_every_death_is_reported() -> None:
    stops: list[str] = []
    health = WorkerHealth(on_death=lambda: stops.append("stop"))
    health.round_done("indicator flush")
    health.loop_died("indicator agent", ValueError("boom"))
    health.loop_died("indicator agent", ValueError("again"))
    health.loop_died("indicator flush", TimeoutError("no Kafka"))
    assert stops == ["stop"] and health.failed
    report = health.report()
    assert report["status"] == "fail"
    assert report["checks"]["indicator agent"] == {"status": "fail", "error": "ValueError: boom"}
    assert report["checks"]["indicator flush"]["status"] == "fail"
