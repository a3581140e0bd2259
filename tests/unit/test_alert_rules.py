"""The deployment's alert rules are stack/alert_rules.py's, and Prometheus' own checker accepts
them (promtool, from Debian's prometheus package, which the stack installs)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from stack.alert_rules import DOCKER_RULES, RULES, rules_document, rules_text


def test_the_deployment_s_rule_file_is_written_from_the_rules() -> None:
    assert DOCKER_RULES.read_text() == rules_text(), "run `python -m stack.alert_rules`"


def test_without_holds_every_alert_fires_at_once_and_nothing_else_changes() -> None:
    held, at_once = rules_document(), rules_document(holds=False)
    assert [r["for"] for r in at_once["groups"][0]["rules"]] == ["0s"] * len(RULES)
    for a, b in zip(held["groups"][0]["rules"], at_once["groups"][0]["rules"], strict=True):
        assert {**a, "for": "0s"} == b


def test_promtool_accepts_the_rules() -> None:
    """promtool comes with Debian's prometheus package, which `make lint` installs."""
    assert shutil.which("promtool"), "promtool is missing: `python -m stack.debian_packages lint`"
    checked = subprocess.run(
        ["promtool", "check", "rules", str(DOCKER_RULES)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inside = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{name}{{{inside}}}", "values": values}


def _alert(name: str, at: str, labels: dict[str, str], summary: str | None) -> dict[str, Any]:
    """One expectation: ``name`` firing at ``at`` with these labels (None: not firing)."""
    rule = next(r for r in RULES if r.name == name)
    expected = (
        []
        if summary is None
        else [
            {
                "exp_labels": {**labels, "severity": rule.severity},
                "exp_annotations": {"summary": summary, "action": rule.action},
            }
        ]
    )
    return {"eval_time": at, "alertname": name, "exp_alerts": expected}


WORKER = {"job": "zerocarbon", "instance": "127.0.0.1:6066", "process": "worker"}
COLLECT = {"job": "zerocarbon", "instance": "127.0.0.1:9473", "process": "collector"}


def test_each_alert_fires_on_its_fault_and_not_on_a_healthy_platform(tmp_path: Path) -> None:
    """Prometheus' own rule tests (promtool test rules) on synthetic series, one minute apart."""
    sink = {"job": "zerocarbon", "instance": "127.0.0.1:9472", "process": "sink"}
    lag = {**WORKER, "topic_partition": "zc.raw.energy:0"}
    restarts = [
        _series("process_start_time_seconds", {**WORKER, "pid": "1"}, "1 1 stale"),
        _series("process_start_time_seconds", {**WORKER, "pid": "2"}, "_ _ 2 2 stale"),
        _series("process_start_time_seconds", {**WORKER, "pid": "3"}, "_ _ _ _ 3 3 stale"),
        _series("process_start_time_seconds", {**WORKER, "pid": "4"}, "_ _ _ _ _ _ 4x10"),
        _series("process_start_time_seconds", {**sink, "pid": "9"}, "9 9 stale _ _ _ _ _ _ _ _"),
        _series("process_start_time_seconds", {**sink, "pid": "10"}, "_ _ 10x10"),
    ]
    tests = [
        {
            "interval": "1m",
            "input_series": [
                _series("zc_sink_buffered_disk_points", sink, "0 0 5x6"),
                _series("zc_validation_received_readings_total", WORKER, "0+100x20"),
                _series(
                    "zc_validation_dead_lettered_readings_total", {**WORKER, "producer": "unknown"}, "0+10x20"
                ),
                _series(
                    "zc_validation_accepted_readings_total", {**WORKER, "producer": "enedis"}, "0+90x3 270x20"
                ),
                _series("zc_validation_accepted_readings_total", {**WORKER, "producer": "grdf"}, "0+5x24"),
                _series("zc_worker_kafka_lag_records", lag, "0+100x15"),
                _series("zc_sink_kafka_lag_records", {**sink, "partition": "0"}, "50x15"),
                *restarts,
                _series("zc_collector_failed_polls_total", {**COLLECT, "collector": "yelo"}, "0+1x20"),
                _series("zc_collector_failed_polls_total", {**COLLECT, "collector": "meteo"}, "0x20"),
                # The bridge away from minute 2: its readings queue up, past half the limit at
                # minute 6; Mosquitto drops some at minute 14.
                _series("zc_mqtt_broker_stored_messages", sink, "1000 1000 1000+100000x15"),
                _series("zc_mqtt_broker_stored_bytes", sink, "1e5x20"),
                _series("zc_mqtt_queue_limit_messages", sink, "1000000x20"),
                _series("zc_mqtt_queue_limit_bytes", sink, "268435456x20"),
                _series("zc_mqtt_broker_dropped_messages_total", sink, "0x13 0 500 500x5"),
            ],
            "alert_rule_test": [
                _alert("ZcSinkBufferOnDisk", "1m", {}, None),
                _alert(
                    "ZcSinkBufferOnDisk",
                    "5m",
                    sink,
                    "the sink holds 5 points on disk: InfluxDB refuses or is away",
                ),
                _alert("ZcDeadLetterRatioHigh", "3m", {}, None),  # above 5 %, not yet for 5 minutes
                _alert(
                    "ZcDeadLetterRatioHigh",
                    "10m",
                    {},
                    "more than 5 % of the readings received are dead-lettered",
                ),
                _alert("ZcProducerSilent", "10m", {}, None),
                _alert(
                    "ZcProducerSilent",
                    "20m",
                    {"producer": "enedis"},
                    "no reading of producer enedis accepted for 15 minutes",
                ),
                _alert("ZcConsumerLagGrowing", "3m", {}, None),
                _alert("ZcConsumerLagGrowing", "12m", lag, "worker falls behind on Kafka (zc.raw.energy:0)"),
                _alert("ZcProcessRestartLoop", "3m", {}, None),  # one worker gone: not a loop
                _alert(
                    "ZcProcessRestartLoop",
                    "7m",
                    {"process": "worker"},
                    "three or more worker processes ended within 15 minutes",
                ),
                _alert("ZcCollectorFailing", "2m", {}, None),  # two failed polls: a bad moment
                _alert(
                    "ZcCollectorFailing",
                    "6m",
                    {"collector": "yelo"},
                    "collector yelo: 3 or more polls failed within an hour",
                ),
                _alert("ZcMqttQueueFilling", "6m", {}, None),  # 401 000 of 1 000 000: not half
                _alert("ZcMqttQueueFilling", "8m", {}, None),  # past half at 7m, not for 2 minutes yet
                _alert(
                    "ZcMqttQueueFilling",
                    "10m",
                    {},
                    "Mosquitto holds more than half of what it queues for an offline client: readings will "
                    "be dropped",
                ),
                _alert("ZcMqttMessagesDropped", "13m", {}, None),
                _alert(
                    "ZcMqttMessagesDropped",
                    "16m",
                    {},
                    "Mosquitto dropped 500 publishes in 10 minutes: readings were lost",
                ),
            ],
        }
    ]
    (tmp_path / "alert-rules.json").write_text(rules_text())
    (tmp_path / "tests.json").write_text(
        json.dumps({"rule_files": ["alert-rules.json"], "evaluation_interval": "1m", "tests": tests})
    )
    checked = subprocess.run(
        ["promtool", "test", "rules", str(tmp_path / "tests.json")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
