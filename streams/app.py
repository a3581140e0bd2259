"""The faust application, configured from the service settings."""

from __future__ import annotations

import faust

from zerocarbon.settings import Settings


def create_app(settings: Settings) -> faust.App:
    """A faust app on the configured Kafka, with faust's raw-table web endpoints off."""
    datadir = settings.stack_home / "worker" / "faust-data"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.worker_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="rocksdb://",
        datadir=str(datadir),
        topic_partitions=settings.kafka_partitions,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # The operators' page (a later issue) will be served beside faust; faust's own web
        # server, and above all its /table endpoints exposing raw state, stay off.
        web_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_router_enabled=False,
        web_metrics_enabled=False,
    )
