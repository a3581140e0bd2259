"""The platform's Prometheus alert rules, as data: one source for the local stack's Prometheus
(stack/prometheus_server.py) and the deployment's (docker/prometheus/alert-rules.json, written
from here: ``python -m stack.alert_rules``; a unit test keeps them equal).

Each rule says what it watches, how long it must hold before it fires, and what to do, which
docs/operations.md repeats for the operator. The files are JSON, which Prometheus reads as the
YAML it is a subset of: no YAML library to depend on.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOCKER_RULES = Path(__file__).resolve().parents[1] / "docker" / "prometheus" / "alert-rules.json"


@dataclass(frozen=True)
class AlertRule:
    name: str
    expr: str
    hold_seconds: int  # how long the condition must hold before the alert fires
    severity: str
    summary: str
    action: str


RULES: tuple[AlertRule, ...] = (
    AlertRule(
        "ZcProducerSilent",
        "sum by (producer) (increase(zc_validation_accepted_readings_total[15m])) == 0",
        60,
        "warning",
        "no reading of producer {{ $labels.producer }} accepted for 15 minutes",
        "check the producer's devices or partner feed, then the bridge (zc_bridge_mqtt_connected)",
    ),
    AlertRule(
        "ZcDeadLetterRatioHigh",
        "sum(rate(zc_validation_dead_lettered_readings_total[5m]))"
        " / sum(rate(zc_validation_received_readings_total[5m])) > 0.05",
        300,
        "warning",
        "more than 5 % of the readings received are dead-lettered",
        "read zc.deadletter (the operators' page lists the reasons): a producer sending a wrong "
        "schema, unregistered devices, a reference file out of date",
    ),
    AlertRule(
        "ZcConsumerLagGrowing",
        'deriv({__name__=~"zc_(worker|sink)_kafka_lag_records"}[5m]) > 0',
        300,
        "warning",
        "{{ $labels.process }} falls behind on Kafka ({{ $labels.topic_partition }}{{ $labels.partition }})",
        "the stage cannot keep up: add a worker (partitions allow), or look for a slow InfluxDB "
        "(sink) or a backfill in progress",
    ),
    AlertRule(
        "ZcSinkBufferOnDisk",
        "zc_sink_buffered_disk_points > 0",
        60,
        "warning",
        "the sink holds {{ $value }} points on disk: InfluxDB refuses or is away",
        "check InfluxDB (zc_sink_influxdb_up, its log and disk); the sink writes the buffer back "
        "once InfluxDB accepts again",
    ),
    AlertRule(
        "ZcProcessRestartLoop",
        "count by (process) (last_over_time(process_start_time_seconds[15m]))"
        " - count by (process) (process_start_time_seconds) >= 3",
        0,
        "critical",
        "three or more {{ $labels.process }} processes ended within 15 minutes",
        "read the process's log for why it exits; `zerocarbon ps` shows its restarts",
    ),
    AlertRule(
        "ZcCollectorFailing",
        "sum by (collector) (increase(zc_collector_failed_polls_total[1h])) >= 3",
        60,
        "warning",
        "collector {{ $labels.collector }}: 3 or more polls failed within an hour",
        "read its dead letters (stage collect: the source's answer and why) and its log; a moved "
        "URL or a renamed field needs its collector file changed (docs/collectors.md)",
    ),
    AlertRule(
        "ZcMqttQueueFilling",
        "max(max_over_time(zc_mqtt_broker_stored_messages[5m]) / zc_mqtt_queue_limit_messages)"
        " > 0.5 or max(max_over_time(zc_mqtt_broker_stored_bytes[5m]) / zc_mqtt_queue_limit_bytes) > 0.5",
        120,
        "critical",
        "Mosquitto holds more than half of what it queues for an offline client: readings will be dropped",
        "the bridge is away or held (zc_bridge_mqtt_connected, its log, Kafka): bring it back now; "
        "past the limit Mosquitto drops readings devices were told were delivered "
        "(docs/local-stack.md, 'How long the bridge may be away')",
    ),
    AlertRule(
        "ZcMqttMessagesDropped",
        "sum(increase(zc_mqtt_broker_dropped_messages_total[10m])) > 0",
        0,
        "critical",
        "Mosquitto dropped {{ $value }} publishes in 10 minutes: readings were lost",
        "a client's queue was full: the bridge's if it was away (bring it back, then ask the "
        "producers for a replay of the period); raise max_queued_messages / max_queued_bytes "
        "for the outages to cover",
    ),
)


def rules_document(holds: bool = True) -> dict[str, Any]:
    """Prometheus' rule file; without ``holds``, every alert fires as soon as its condition
    does (the integration test, which cannot wait five minutes)."""
    return {
        "groups": [
            {
                "name": "zerocarbon",
                "rules": [
                    {
                        "alert": rule.name,
                        "expr": rule.expr,
                        "for": f"{rule.hold_seconds if holds else 0}s",
                        "labels": {"severity": rule.severity},
                        "annotations": {"summary": rule.summary, "action": rule.action},
                    }
                    for rule in RULES
                ],
            }
        ]
    }


def rules_text(holds: bool = True) -> str:
    return json.dumps(rules_document(holds), indent=2) + "\n"


def main() -> int:
    """``python -m stack.alert_rules``: write the deployment's rule file."""
    DOCKER_RULES.parent.mkdir(parents=True, exist_ok=True)
    DOCKER_RULES.write_text(rules_text())
    print(f"wrote {DOCKER_RULES}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
