"""`zerocarbon share`'s /metrics: the stage's counters (sharing/share_stage.py) for Prometheus.

records = offered + unwanted (no agreement in force wanted it: not parsed) + tombstones +
dead-lettered; releases by party (as many parties as agreements granted: bounded by
configuration).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from config.prometheus_metrics import Metric

SHARING_METRICS = (
    Metric("zc_sharing_records_total", "counter", "records of zc.valid.* and zc.indicators read", "records"),
    Metric(
        "zc_sharing_offered_records_total", "counter", "records parsed and given to the agreements", "offered"
    ),
    Metric(
        "zc_sharing_unwanted_records_total",
        "counter",
        "records no agreement in force wanted (not parsed)",
        "shared_with_nobody",
    ),
    Metric("zc_sharing_dead_lettered_records_total", "counter", "records it could not read", "dead_lettered"),
    Metric(
        "zc_sharing_releases_total",
        "counter",
        "records published to a party's topic, by party",
        "releases_by_party",
        "party",
    ),
    Metric("zc_sharing_agreements_in_force", "gauge", "agreements in force now", "agreements_in_force"),
)


def sharing_snapshot(counters: Any, in_force: int) -> Mapping[str, Any]:
    """The stage's counters (a ``ShareCounters``), keyed as SHARING_METRICS reads them."""
    return {
        "records": counters.records,
        "offered": counters.offered,
        "shared_with_nobody": counters.shared_with_nobody,
        "dead_lettered": counters.dead_lettered,
        "releases_by_party": dict(counters.releases_by_party),
        "agreements_in_force": in_force,
    }
