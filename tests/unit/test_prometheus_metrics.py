"""Metrics are the status figures, read at scrape time (config/prometheus_metrics.py): names
follow Prometheus' conventions, a mapping gives one series per key, absent figures no series,
and the server says which port it could not take."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.bridge_metrics import BRIDGE_METRICS
from collectors.collector_metrics import COLLECTOR_METRICS, snapshot
from config.prometheus_metrics import (
    Metric,
    MetricsEndpoint,
    exposition,
    metrics_registry,
    metrics_server,
)
from config.web_access import WebAccessRefused
from sharing.share_stage import ShareCounters
from sharing.sharing_metrics import SHARING_METRICS, sharing_snapshot
from sinks.sink_metrics import SINK_METRICS, metrics_snapshot
from streams.worker_metrics import WORKER_METRICS

METRICS = (
    Metric("zc_test_received_messages_total", "counter", "received, by family", "received", "family"),
    Metric("zc_test_in_flight_messages", "gauge", "in flight", "in_flight"),
    Metric("zc_test_connected", "gauge", "connected", "connected"),
    Metric("zc_test_absent", "gauge", "not in the snapshot", "absent"),
)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_a_snapshot_becomes_series_read_at_each_scrape() -> None:
    status: dict[str, Any] = {"received": {"energy": 3, "mobility": 2}, "in_flight": 4, "connected": True}
    registry = metrics_registry(METRICS, lambda: status)
    first = samples(exposition(registry).decode())
    assert first[("zc_test_received_messages_total", (("family", "energy"),))] == 3
    assert first[("zc_test_received_messages_total", (("family", "mobility"),))] == 2
    assert first[("zc_test_in_flight_messages", ())] == 4
    assert first[("zc_test_connected", ())] == 1
    assert not any(name == "zc_test_absent" for name, _ in first)
    assert ("process_cpu_seconds_total", ()) in first  # the process collector, on Linux
    status["received"] = {"energy": 5, "mobility": 2}
    again = samples(exposition(registry).decode())
    assert again[("zc_test_received_messages_total", (("family", "energy"),))] == 5


def test_names_follow_the_conventions_and_every_metric_is_documented() -> None:
    with pytest.raises(ValueError, match="_total"):
        Metric("zc_test_messages", "counter", "a counter without _total", "x")
    with pytest.raises(ValueError, match="_total"):
        Metric("zc_test_messages_total", "gauge", "a gauge with _total", "x")
    documented = (Path(__file__).parents[2] / "docs" / "metrics.md").read_text(encoding="utf-8")
    for metric in (*BRIDGE_METRICS, *SINK_METRICS, *WORKER_METRICS, *COLLECTOR_METRICS, *SHARING_METRICS):
        assert f"`{metric.name}`" in documented, metric.name
        if metric.label:
            assert metric.label in documented, (metric.name, metric.label)


def test_a_mapping_needs_a_label() -> None:
    registry = metrics_registry((Metric("zc_test_x_total", "counter", "x", "x"),), lambda: {"x": {"a": 1}})
    with pytest.raises(ValueError, match="no label"):
        exposition(registry)


def test_the_sink_s_latency_quantiles_and_pause_come_from_its_status() -> None:
    latency = {"count": 3, "p50": 0.01, "p99": 0.2, "max": 0.3}
    status = {"write_latency_seconds": latency, "reading_paused_by": None}
    snapshot = metrics_snapshot(status)
    assert snapshot["write_latency_quantiles"] == {"0.5": 0.01, "0.99": 0.2, "1": 0.3}
    assert snapshot["reading_paused"] is False
    assert metrics_snapshot({"write_latency_seconds": {"count": 0}})["write_latency_quantiles"] is None


async def test_the_server_serves_metrics_and_names_a_port_it_cannot_take() -> None:
    registry = metrics_registry(METRICS, lambda: {"in_flight": 7})
    async with metrics_server(registry, MetricsEndpoint("127.0.0.1", 0)) as port:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            assert samples(await response.text())[("zc_test_in_flight_messages", ())] == 7
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            async with metrics_server(registry, MetricsEndpoint("127.0.0.1", port)):
                pass
    with socket.socket() as probe:  # released once the block ends
        probe.bind(("127.0.0.1", port))


async def test_beyond_loopback_metrics_need_a_token_and_serve_only_who_shows_it() -> None:
    registry = metrics_registry(METRICS, lambda: {"in_flight": 7})
    with pytest.raises(WebAccessRefused, match="ZC_METRICS_TOKEN"):
        async with metrics_server(registry, MetricsEndpoint("0.0.0.0", 0)):
            pass
    token = "a-long-random-metrics-token"
    async with metrics_server(registry, MetricsEndpoint("0.0.0.0", 0, token)) as port:
        url = f"http://127.0.0.1:{port}/metrics"
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as refused:
                assert refused.status == 401 and "ZC_METRICS_TOKEN" in await refused.text()
            async with session.get(url, headers={"Authorization": "Bearer not-it"}) as wrong:
                assert wrong.status == 401
            async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as shown:
                assert shown.status == 200
                assert samples(await shown.text())[("zc_test_in_flight_messages", ())] == 7


async def test_health_and_ready_beside_the_metrics_ready_only_when_every_check_holds() -> None:
    checks = {"kafka_ready": True, "influxdb_up": False}
    registry = metrics_registry((), lambda: {})
    async with (
        metrics_server(registry, MetricsEndpoint(), lambda: checks) as port,
        aiohttp.ClientSession() as http,
    ):
        async with http.get(f"http://127.0.0.1:{port}/health") as health:
            assert health.status == 200 and (await health.json())["status"] == "pass"
        async with http.get(f"http://127.0.0.1:{port}/ready") as ready:
            assert ready.status == 503 and (await ready.json())["failing"] == ["influxdb_up"]
        checks["influxdb_up"] = True
        async with http.get(f"http://127.0.0.1:{port}/ready") as ready:
            assert ready.status == 200 and (await ready.json())["status"] == "pass"


def test_each_collector_s_report_becomes_its_series() -> None:
    """A collector's report (collectors/collection_run.py) per collector label; the dead-lettered
    rows summed over their free-text reasons (not a label: unbounded), failed polls by kind."""

    class Run:
        def __init__(self, name: str, report: dict[str, Any]) -> None:
            self.name, self._report = name, report

        def report(self) -> dict[str, Any]:
            return self._report

    def report(rows: int, sent: int, dead: dict[str, int], failed: dict[str, int]) -> dict[str, Any]:
        keys = ("polls", "requests", "retries", "not_modified", "already_collected", "already_refused")
        return {
            **dict.fromkeys(keys, 1),
            "rows": rows,
            "sent": sent,
            "unlisted_devices": 0,
            "rows_dead_lettered": dead,
            "failed_polls": failed,
        }

    runs = [
        Run("parks", report(10, 6, {"no column 'a'": 2, "no column 'b'": 1}, {"http_503": 1})),
        Run("bikes", report(4, 4, {}, {"http_503": 2, "not_json": 1})),
    ]
    found = samples(exposition(metrics_registry(COLLECTOR_METRICS, lambda: snapshot(runs))).decode())
    assert found[("zc_collector_rows_total", (("collector", "parks"),))] == 10
    assert found[("zc_collector_sent_total", (("collector", "bikes"),))] == 4
    assert found[("zc_collector_rows_dead_lettered_total", (("collector", "parks"),))] == 3
    assert found[("zc_collector_failed_polls_total", (("collector", "bikes"),))] == 3
    assert found[("zc_collector_failures_total", (("kind", "http_503"),))] == 3
    assert found[("zc_collector_failures_total", (("kind", "not_json"),))] == 1


def test_the_sharing_stage_s_counters_by_party_and_its_agreements_in_force() -> None:
    counters = ShareCounters(records=10, offered=6, shared_with_nobody=3, tombstones=0, dead_lettered=1)
    counters.releases_by_party.update({"lru-lab": 4, "public": 2})
    registry = metrics_registry(SHARING_METRICS, lambda: sharing_snapshot(counters, 3))
    found = samples(exposition(registry).decode())
    assert found[("zc_sharing_records_total", ())] == 10
    assert (
        found[("zc_sharing_offered_records_total", ())]
        + found[("zc_sharing_unwanted_records_total", ())]
        + found[("zc_sharing_dead_lettered_records_total", ())]
        == 10
    )
    assert found[("zc_sharing_releases_total", (("party", "lru-lab"),))] == 4
    assert found[("zc_sharing_agreements_in_force", ())] == 3
