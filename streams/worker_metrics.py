"""The worker's /metrics: what ``/counters`` and ``/health`` say, for Prometheus.

received = accepted + duplicates + dead-lettered, each per producer (bounded by identity:
streams/validation/stage.py); the indicator stage's outcomes per reading or record; whether
each loop is alive.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import faust

from config.prometheus_metrics import Metric
from streams.validation.stage import UNKNOWN, UNREGISTERED, ValidationCounters
from streams.worker_health import WorkerHealth

WORKER_METRICS = (
    Metric("zc_validation_received_readings_total", "counter", "readings validation received", "received"),
    Metric(
        "zc_validation_accepted_readings_total",
        "counter",
        "readings accepted onto zc.valid.*, by their device's producer",
        "accepted",
        "producer",
    ),
    Metric(
        "zc_validation_duplicate_readings_total",
        "counter",
        "readings already accepted within the horizon, not sent again, by producer",
        "duplicates",
        "producer",
    ),
    Metric(
        "zc_validation_dead_lettered_readings_total",
        "counter",
        "readings sent to the dead-letter topic, by the producer their payload names",
        "dead_lettered",
        "producer",
    ),
    Metric(
        "zc_validation_dead_letter_reasons_total",
        "counter",
        "dead letters by the type of their first error",
        "reasons",
        "reason",
    ),
    Metric(
        "zc_indicator_outcomes_total",
        "counter",
        "what the indicator stage did with each reading or record (counted, late, duplicate...)",
        "indicators",
        "outcome",
    ),
    Metric(
        "zc_worker_kafka_lag_records",
        "gauge",
        "records of the raw and valid topics not read yet by this worker, by assigned partition "
        "(topic:partition, as of the consumer's last fetch)",
        "kafka_lag",
        "topic_partition",
    ),
    Metric(
        "zc_worker_loop_up",
        "gauge",
        "1 while the worker's loop is alive (0: it died, /health says fail)",
        "loops",
        "loop",
    ),
)


def consumer_lag(app: faust.App) -> dict[str, int]:
    """Records behind the end of each of the service's partitions this worker holds and has
    read from (faust's last read offset, the consumer's last fetched end); empty before the
    first assignment, and when the consumer cannot say."""
    lag: dict[str, int] = {}
    try:
        consumer = app.consumer
        read = consumer._read_offset  # type: ignore[attr-defined]  # faust's: what it handed the streams
        for tp in consumer.assignment():
            last = read.get(tp)
            end = consumer.highwater(tp) if tp.topic.startswith("zc.") and last is not None else None
            if end is not None and last is not None:
                lag[f"{tp.topic}:{tp.partition}"] = max(0, end - (last + 1))
    except Exception:  # no consumer yet, or one stopping: a scrape must not fail for it
        return {}
    return lag


def worker_snapshot(
    counters: ValidationCounters, indicators: Counter[str], health: WorkerHealth, lag: dict[str, int]
) -> dict[str, Any]:
    """The figures WORKER_METRICS reads, now."""
    checks = health.report()["checks"]
    snapshot = counters.snapshot()
    # Every producer's series from the start, at 0: a rate needs the count before the first
    # reading (a dead-letter ratio read 0/0 when the first 50 letters created the series at 50),
    # and a producer silent since the worker started has a series to be silent on.
    for name, also in (("accepted", ()), ("duplicates", ()), ("dead_lettered", (UNKNOWN, UNREGISTERED))):
        snapshot[name] = dict.fromkeys((*sorted(counters.registered), *also), 0) | snapshot[name]
    return {
        **snapshot,
        "indicators": dict(indicators),
        "kafka_lag": lag,
        "loops": {loop: check["status"] != "fail" for loop, check in checks.items()},
    }


READY_MAX_LAG_RECORDS = 10_000
"""Caught up, for /ready: at most so many records behind on its partitions (a second or two of
work), not zero, which a worker under load is never at a scrape."""


def worker_readiness(app: faust.App, health: WorkerHealth) -> dict[str, bool]:
    """``/ready``: its loops alive, partitions assigned, and caught up on them."""
    try:
        assigned = bool(app.consumer.assignment())
    except Exception:  # no consumer yet
        assigned = False
    return {
        "loops": health.report()["status"] != "fail",
        "partitions_assigned": assigned,
        "caught_up": assigned and sum(consumer_lag(app).values()) <= READY_MAX_LAG_RECORDS,
    }
