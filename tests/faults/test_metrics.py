"""Prometheus metrics of the real processes under a territory's load (docs/metrics.md): after
the load, every reading published over MQTT is in the bridge's received and forwarded series,
the worker's series say what the simulator expects at validation, and the sink's say what its
status file says, with nothing left buffered. Each process serves its own port (the isolated
stack sets the bridge's and the sink's to 0: a free one, named in their status files)."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from config.kafka_access import KafkaAccess
from config.settings import Settings
from stack.stack_config import StackConfig
from tests.faults.territory import Territory
from tests.faults.test_sink_disk_full import sink_status
from zerocarbon.component_configs import bridge_status_dir, worker_url

READINGS = 6000


async def scrape(url: str) -> dict[str, float]:
    """Each metric's samples summed over their labels, by sample name."""
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        assert answer.status == 200, await answer.text()
        text = await answer.text()
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    return sums


def count(counts: dict[str, int]) -> int:
    return sum(counts.values())


async def test_the_processes_metrics_account_for_every_reading(
    settings: Settings, kafka_admin: KafkaAccess, stack_config: StackConfig, tmp_path: Path
) -> None:
    async with Territory(settings, kafka_admin, stack_config, tmp_path) as territory:
        load = await territory.start_load(count=READINGS, rate=1500)
        report = await load.finished()
        await territory.reconcile(report)

        bridge_file = bridge_status_dir(settings) / f"{territory.bridge_id}.status.json"
        bridge_port = json.loads(bridge_file.read_text())["metrics_port"]
        bridge = await scrape(f"http://127.0.0.1:{bridge_port}/metrics")
        assert bridge["zc_bridge_received_messages_total"] == report.messages
        assert (
            bridge["zc_bridge_forwarded_messages_total"] + bridge["zc_bridge_dead_lettered_messages_total"]
            == report.messages
        )
        assert bridge["zc_bridge_in_flight_messages"] == 0 and bridge["zc_bridge_mqtt_connected"] == 1
        assert bridge["process_resident_memory_bytes"] > 0

        worker = await scrape(f"{worker_url(settings)}/metrics")
        before, expected = territory.counters_before, report.expected
        for outcome, name in (
            ("accepted", "accepted"),
            ("duplicates", "duplicate"),
            ("dead_lettered", "dead_lettered"),
        ):
            moved = worker[f"zc_validation_{name}_readings_total"] - count(before[outcome])
            assert moved == expected[outcome], (outcome, moved, expected)
        assert worker["zc_indicator_outcomes_total"] > 0
        assert worker["zc_indicator_flush_seconds_count"] > 0
        assert worker["zc_indicator_windows_closed_total"] > 0 and worker["zc_indicator_windows_open"] > 0
        assert worker["zc_worker_kafka_lag_records"] == 0  # every partition read to its end

        status = sink_status(settings)
        sink = await scrape(f"http://127.0.0.1:{status['metrics_port']}/metrics")
        assert 0 < sink["zc_sink_points_written_total"] <= sink["zc_sink_points_total"]
        assert sink["zc_sink_buffered_memory_points"] == sink["zc_sink_buffered_disk_points"] == 0
        assert sink["zc_sink_influxdb_up"] == 1
        assert sink["zc_sink_kafka_lag_records"] == 0  # summed over the partitions read
        print(
            f"bridge {bridge['zc_bridge_forwarded_messages_total']:.0f} forwarded, worker "
            f"{worker['zc_validation_accepted_readings_total']:.0f} accepted, sink "
            f"{sink['zc_sink_points_written_total']:.0f} points written"
        )
