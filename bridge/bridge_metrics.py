"""The bridge's /metrics: its status file's figures (``MqttToKafkaBridge.status``) for Prometheus.

received = forwarded + dead-lettered + undeliverable + in flight, per the same counters as the
status file; families are the three of schemas/families.py.
"""

from __future__ import annotations

from config.prometheus_metrics import Metric

BRIDGE_METRICS = (
    Metric(
        "zc_bridge_received_messages_total",
        "counter",
        "MQTT messages received from devices, by event family",
        "received",
        "family",
    ),
    Metric(
        "zc_bridge_forwarded_messages_total",
        "counter",
        "messages Kafka confirmed on their raw topic, by event family",
        "forwarded",
        "family",
    ),
    Metric(
        "zc_bridge_dead_lettered_messages_total",
        "counter",
        "messages sent to the dead-letter topic (a topic outside the tree, a reading Kafka refuses)",
        "dead_lettered",
    ),
    Metric(
        "zc_bridge_undeliverable_messages_total",
        "counter",
        "dead letters Kafka refused in turn: lost, and said so in the log",
        "undeliverable",
    ),
    Metric(
        "zc_bridge_redelivered_messages_total",
        "counter",
        "redeliveries of messages already in Kafka, acknowledged and not sent again",
        "redelivered_not_forwarded",
    ),
    Metric(
        "zc_bridge_kafka_records_total",
        "counter",
        "Kafka records sent (each packs the readings of one partition)",
        "kafka_records",
    ),
    Metric(
        "zc_bridge_kafka_send_failures_total",
        "counter",
        "records Kafka did not confirm at a send (retried, or refused for what they are)",
        "kafka_send_failures",
    ),
    Metric(
        "zc_bridge_out_of_order_records_total",
        "counter",
        "records confirmed after an earlier record of their partition had failed",
        "records_out_of_order",
    ),
    Metric(
        "zc_bridge_in_flight_messages",
        "gauge",
        "messages received and not yet confirmed by Kafka nor dead-lettered (unacknowledged to MQTT)",
        "in_flight",
    ),
    Metric(
        "zc_bridge_mqtt_connected",
        "gauge",
        "1 while the bridge is connected to Mosquitto",
        "mqtt_connected",
    ),
    Metric("zc_bridge_kafka_ready", "gauge", "1 while the bridge's Kafka producer is started", "kafka_ready"),
)
