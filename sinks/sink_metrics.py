"""The sink's /metrics: its status file's figures (``IndicatorSink.status``) for Prometheus.

points in = written + refused (dead-lettered) + buffered (in memory, on disk) + in flight.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from config.prometheus_metrics import Metric

SINK_METRICS = (
    Metric("zc_sink_records_total", "counter", "zc.indicators records read", "records"),
    Metric("zc_sink_points_total", "counter", "InfluxDB points the records carried", "points_in"),
    Metric("zc_sink_points_written_total", "counter", "points InfluxDB accepted", "points_written"),
    Metric(
        "zc_sink_points_refused_total",
        "counter",
        "points InfluxDB refused for what they are, dead-lettered",
        "rejected_dead_lettered",
    ),
    Metric(
        "zc_sink_unreadable_records_total",
        "counter",
        "records that are no indicator update, dead-lettered",
        "unreadable_dead_lettered",
    ),
    Metric("zc_sink_write_requests_total", "counter", "InfluxDB write requests sent", "write_requests"),
    Metric(
        "zc_sink_write_retries_total", "counter", "write requests retried (InfluxDB away, slow)", "retries"
    ),
    Metric("zc_sink_buffered_memory_points", "gauge", "points waiting in memory", "buffered_memory_points"),
    Metric(
        "zc_sink_buffered_memory_bytes",
        "gauge",
        "bytes of the points waiting in memory",
        "buffered_memory_bytes",
    ),
    Metric(
        "zc_sink_buffered_disk_points", "gauge", "points waiting in the disk buffer", "buffered_disk_points"
    ),
    Metric("zc_sink_buffered_disk_bytes", "gauge", "bytes of the disk buffer", "buffered_disk_bytes"),
    Metric(
        "zc_sink_disk_limit_bytes",
        "gauge",
        "the disk buffer's limit (ZC_SINK_SPOOL_MAX_BYTES)",
        "disk_limit_bytes",
    ),
    Metric(
        "zc_sink_reading_paused",
        "gauge",
        "1 while the sink reads nothing from Kafka, its disk buffer full",
        "reading_paused",
    ),
    Metric("zc_sink_influxdb_up", "gauge", "1 while InfluxDB accepts writes", "influx_ok"),
    Metric("zc_sink_kafka_ready", "gauge", "1 while the sink's Kafka clients are started", "kafka_ready"),
    Metric(
        "zc_sink_kafka_lag_records",
        "gauge",
        "records of zc.indicators not read yet, by partition (as of the last fetch, or of the ends "
        "asked while paused)",
        "kafka_lag",
        "partition",
    ),
    Metric(
        "zc_sink_write_latency_seconds",
        "gauge",
        "write request latency over the recent requests, by quantile (1: the slowest)",
        "write_latency_quantiles",
        "quantile",
    ),
    Metric(
        "zc_sink_mqtt_retained_published_total",
        "counter",
        "latest values republished as retained MQTT messages",
        "mqtt_retained_published",
    ),
    Metric(
        "zc_mqtt_broker_stored_messages",
        "gauge",
        "messages Mosquitto holds: queued for offline persistent sessions (the bridge's), and retained",
        "mqtt_broker_stored_messages",
    ),
    Metric("zc_mqtt_broker_stored_bytes", "gauge", "bytes of those messages", "mqtt_broker_stored_bytes"),
    Metric(
        "zc_mqtt_broker_dropped_messages_total",
        "counter",
        "publishes Mosquitto dropped since it started (a full queue: readings lost)",
        "mqtt_broker_dropped_messages",
    ),
    Metric(
        "zc_mqtt_queue_limit_messages",
        "gauge",
        "Mosquitto's max_queued_messages per offline client, as configured",
        "mqtt_queue_limit_messages",
    ),
    Metric(
        "zc_mqtt_queue_limit_bytes",
        "gauge",
        "Mosquitto's max_queued_bytes per offline client, as configured",
        "mqtt_queue_limit_bytes",
    ),
    Metric(
        "zc_sink_mqtt_retained_skipped_total",
        "counter",
        "retained MQTT messages not published (the broker away, the queue full)",
        "mqtt_retained_skipped",
    ),
)


def metrics_snapshot(status: Mapping[str, Any]) -> dict[str, Any]:
    """``status`` with the figures /metrics derives from it: the write latency's quantiles,
    whether reading is paused."""
    latency = status.get("write_latency_seconds") or {}
    quantiles = (
        {"0.5": latency["p50"], "0.99": latency["p99"], "1": latency["max"]} if latency.get("count") else None
    )
    return {
        **status,
        "write_latency_quantiles": quantiles,
        "reading_paused": status.get("reading_paused_by") is not None,
    }
