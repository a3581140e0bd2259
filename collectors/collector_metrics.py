"""`zerocarbon collect`'s /metrics: each collector's tally (collectors/collection_run.py) for
Prometheus, labelled by collector (as many as collector files run: bounded by configuration).

rows = sent + already collected + dead-lettered rows + already refused + unlisted devices, per
collector, as in the report; failed polls per collector (ZcCollectorFailing) and by kind (a
closed list: docs/collectors.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from config.prometheus_metrics import Metric


class Reporting(Protocol):
    @property
    def name(self) -> str: ...

    def report(self) -> dict[str, Any]: ...


def _per_collector(name: str, key: str, help_text: str) -> Metric:
    return Metric(name, "counter", help_text, key, "collector")


COLLECTOR_METRICS = (
    _per_collector("zc_collector_polls_total", "polls", "polls of the source, done or failed"),
    _per_collector("zc_collector_requests_total", "requests", "HTTP requests sent, retries included"),
    _per_collector(
        "zc_collector_retries_total", "retries", "requests sent again after a 429, 5xx or timeout"
    ),
    _per_collector("zc_collector_not_modified_total", "not_modified", "answers 304 to a conditional request"),
    _per_collector("zc_collector_rows_total", "rows", "records the source served"),
    _per_collector("zc_collector_sent_total", "sent", "records sent to zc.raw.<family>, Kafka acknowledged"),
    _per_collector(
        "zc_collector_already_collected_total", "already_collected", "records the cursor knew: not sent again"
    ),
    _per_collector(
        "zc_collector_rows_dead_lettered_total", "rows_dead_lettered", "records the mapping cannot use"
    ),
    _per_collector(
        "zc_collector_already_refused_total", "already_refused", "records dead-lettered before, served again"
    ),
    _per_collector(
        "zc_collector_unlisted_devices_total", "unlisted_devices", "records of source devices not collected"
    ),
    _per_collector(
        "zc_collector_failed_polls_total", "failed_polls", "polls that ended on a failure (the alert's)"
    ),
    Metric(
        "zc_collector_failures_total",
        "counter",
        "polls ended on a failure, by kind (not_json, truncated, http_503...; their answer dead-lettered)",
        "failures_by_kind",
        "kind",
    ),
)


def snapshot(runs: Sequence[Reporting]) -> Mapping[str, Any]:
    """The figures of every running collector, keyed as COLLECTOR_METRICS reads them."""
    reports = {run.name: run.report() for run in runs}
    out: dict[str, Any] = {
        m.key: {
            name: sum(r[m.key].values()) if isinstance(r[m.key], dict) else r[m.key]
            for name, r in reports.items()
        }
        for m in COLLECTOR_METRICS
        if m.label == "collector"
    }
    kinds: Counter[str] = Counter()
    for report in reports.values():
        kinds.update(report["failed_polls"])
    out["failures_by_kind"] = dict(kinds)
    return out
