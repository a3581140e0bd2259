"""The Grafana dashboards ask only for what the service really writes to InfluxDB.

What is written is computed, not listed: the contract samples of every family go through
the indicator engine (streams/indicators/engine.py: enrichment, windows, derived ratios,
producer activity), the territory rollup and the sink's line protocol; every measurement,
tag, field, window and bucket a dashboard query names must be among what came out.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bridge.bridge_metrics import BRIDGE_METRICS
from collectors.collector_metrics import COLLECTOR_METRICS
from config.settings import Settings
from schemas.catalogue import valid_topic
from schemas.families import FAMILIES, Family
from schemas.indicator import IndicatorUpdate
from sinks.influx_buckets import bucket_for_window
from sinks.line_protocol import indicator_line
from sinks.sink_metrics import SINK_METRICS
from sinks.territory_rollup import OURS
from streams.indicators.engine import IndicatorPartition, ValidRecord
from streams.validation.engine import VALID_ARRAY
from streams.worker_metrics import WORKER_METRICS
from tests.contract.samples import REFERENCE, VALID
from tests.grafana_panels import DASHBOARDS, panels, prometheus_panels
from zerocarbon.component_configs import influx_read_target

FLUX_COLUMNS = {"_measurement", "_field", "_value", "_time", "_start", "_stop"}


def written() -> dict[str, set[str]]:
    """Measurements, tags, fields, windows and buckets the engine and the sink produce."""
    now = datetime.now(UTC)
    updates: list[bytes] = []
    for name, family in FAMILIES.items():
        # Every sample of the family in one record of its valid topic, as validation writes it.
        events = [e for ps in VALID.values() for p in ps if (e := _as(family, p)) is not None]
        record = ValidRecord(
            valid_topic(name), 0, 0, None, VALID_ARRAY[name].dump_json(events, by_alias=True)
        )
        engine: IndicatorPartition[None] = IndicatorPartition(
            record.topic, 0, grace_seconds=300, checkpoint_seconds=5.0
        )
        engine.apply(record, REFERENCE, now, None)
        updates += [value for _, value in engine.flush(now, 0.0, REFERENCE).updates]
    out: dict[str, set[str]] = {k: set() for k in ("measurements", "tags", "fields", "windows", "buckets")}
    target = influx_read_target(Settings())
    for value in updates:
        indicator = IndicatorUpdate.model_validate_json(value)
        line = indicator_line(indicator).line
        series, rest = line.split(" ", 1)  # our tag values hold no space
        fields = rest.rsplit(" ", 1)[0]
        out["measurements"].add(indicator.indicator)
        out["tags"] |= {pair.split("=")[0] for pair in series.split(",")[1:]}
        out["fields"] |= {pair.split("=")[0] for pair in fields.split(",")}
        out["windows"].add(indicator.window)
        out["buckets"].add(bucket_for_window(indicator.window, target))
    out["measurements"] |= set(OURS)  # the territory rollup, run by the sink process
    return out


def _as(family: Family, payload: dict[str, Any]) -> Any:
    """The sample as an event of ``family``, or None if it is another family's."""
    try:
        return family.adapter.validate_json(json.dumps(payload))
    except ValidationError:
        return None


def queries(path: Path) -> list[str]:
    return [panel.query for panel in panels(path)]


def test_the_engine_writes_what_the_check_relies_on() -> None:
    seen = written()
    # If the samples stopped reaching the engine, every dashboard would pass for nothing.
    assert {"energy_consumed_kwh", "emissions_kgco2e", "passenger_km", "environment_value"} <= seen[
        "measurements"
    ]
    assert {"renewable_share_ratio", "producer_completeness_ratio"} <= seen["measurements"]
    assert {"commune", "sector", "carrier", "mode", "station", "quantity", "producer", "window"} <= seen[
        "tags"
    ]
    assert seen["fields"] == {"value", "final", "revision", "unit"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_query_names_what_the_sink_writes(path: Path) -> None:
    seen = written()
    assert queries(path) or prometheus_panels(path), "a dashboard without queries"
    for query in queries(path):
        for bucket in re.findall(r'from\(bucket: "([^"]+)"\)', query):
            assert bucket in seen["buckets"], (bucket, query)
        for name in re.findall(r'r\._measurement == "([^"]+)"', query):
            assert name in seen["measurements"], (name, query)
        for name in re.findall(r'r\._field == "([^"]+)"', query):
            assert name in seen["fields"], (name, query)
        for window in re.findall(r'r\.window == "([^"]+)"', query):
            assert window in seen["windows"], (window, query)
            assert (window == "1m") == ("indicators_1m" in query), (
                "1-minute windows live in their own bucket",
                query,
            )
        for tag in re.findall(r"r\.([a-z_]+) ==", query):
            assert tag in seen["tags"] | {"_measurement", "_field"}, (tag, query)
        for columns in re.findall(r"group\(columns: \[([^\]]*)\]\)", query):
            for tag in re.findall(r'"([^"]+)"', columns):
                assert tag in seen["tags"] | FLUX_COLUMNS, (tag, query)


PROCESS_METRICS = {"process_cpu_seconds_total", "process_resident_memory_bytes"}  # prometheus-client's


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_prometheus_panel_names_metrics_the_processes_export(path: Path) -> None:
    """A PromQL panel names only declared metrics and their labels (the names are data:
    bridge/bridge_metrics.py and its siblings); tests/integration/test_prometheus.py runs them."""
    declared = {
        m.name: m.label for m in (*BRIDGE_METRICS, *SINK_METRICS, *WORKER_METRICS, *COLLECTOR_METRICS)
    }
    labels = {label for label in declared.values() if label} | {"process", "quantile"}
    for panel in prometheus_panels(path):
        names = set(re.findall(r"\b(zc_[a-z_]+|process_[a-z_]+)\b", panel.query))
        assert names, panel
        assert names <= set(declared) | PROCESS_METRICS, (panel.title, names - set(declared))
        for grouped in re.findall(r"by \(([^)]*)\)", panel.query):
            assert {g.strip() for g in grouped.split(",")} <= labels, (panel.title, grouped)
