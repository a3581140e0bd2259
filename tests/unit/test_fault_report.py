"""The simulator's detailed fault report (``zerocarbon simulate --report-events``): every message
that carries a fault is listed under each of its faults, with what identifies it downstream,
and says where validation will put it; the run writes it only when asked."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from schemas.dead_letter import DeadLetter
from schemas.families import FAMILIES
from sensors import faults, simulate_command, simulation_run
from sensors.faults import FaultRates
from sensors.fleet import build_fleet
from sensors.fleet_registry import with_fleet
from sensors.mqtt_publishers import MqttTarget
from sensors.send_tally import FaultInstances, SendTally
from sensors.territory_stream import Emission, TerritoryStream
from streams.validation.deduplication import RecentEventIds
from streams.validation.stage import Accepted, Duplicate, validate_payload
from tests.unit.simulated_territory_samples import COMMUNES, NOW, ORIGIN, REFERENCE, START, every_fault, take
from zerocarbon.component_configs import device_side_config

EVERY_FAULT = every_fault(index_reset=0.05)


def _listed(stream: TerritoryStream, emissions: list[Emission], batch: int = 700) -> FaultInstances:
    """The instances of ``emissions``, added in batches as the publish loop does."""
    instances = FaultInstances(stream.clock_skews())
    for i in range(0, len(emissions), batch):
        instances.add(emissions[i : i + batch])
    return instances


def test_each_faulty_message_is_listed_under_each_of_its_faults_in_send_order() -> None:
    stream = TerritoryStream(build_fleet(400, COMMUNES), START, 3, EVERY_FAULT)
    emissions = take(stream, 15_000)
    report = _listed(stream, emissions).report()
    tally = SendTally()
    for e in emissions:
        tally.count(e.family, e.faults)
    assert report["messages"] == len(emissions)
    assert {fault: len(records) for fault, records in report["per_fault"].items()} == tally.report()[
        "per_fault"
    ]
    assert all(report["per_fault"][fault] for fault in faults.FAULTS)
    for fault, records in report["per_fault"].items():
        for record in records:
            sent = emissions[record["sequence"]]
            assert fault in sent.faults and record["faults"] == list(sent.faults)
            assert (record["family"], record["topic"]) == (sent.family, sent.topic)
            assert record["device_id"] == sent.topic.split("/")[3]
            assert record["payload_sha256"] == hashlib.sha256(sent.payload).hexdigest()
            assert datetime.fromisoformat(record["sent_at"]).timestamp() == int(sent.clock)
    # Every message with a fault is listed, and none without.
    listed = {r["sequence"] for records in report["per_fault"].values() for r in records}
    assert listed == {i for i, e in enumerate(emissions) if e.faults}


def test_each_record_says_where_validation_puts_the_message_and_names_its_event() -> None:
    fleet = build_fleet(500, COMMUNES)
    reference = with_fleet(REFERENCE, fleet)
    stream = TerritoryStream(fleet, START, 7, EVERY_FAULT)
    emissions = take(stream, 10_000)
    records = {r["sequence"]: r for r in _listed(stream, emissions).records}
    recent = RecentEventIds(horizon=3600)
    seen: Counter[str] = Counter()
    for sequence, e in enumerate(emissions):
        outcome = validate_payload(FAMILIES[e.family], e.payload, ORIGIN, reference, NOW, recent)
        record = records.get(sequence)
        if record is None:
            assert isinstance(outcome, Accepted) and not e.faults
            continue
        seen[record["expected_at_validation"]] += 1
        if record["expected_at_validation"] == faults.DEAD_LETTERED:
            assert isinstance(outcome, DeadLetter)
            assert outcome.original_payload() == base64.b64decode(record["payload_base64"]) == e.payload
            continue
        if record["expected_at_validation"] == faults.DUPLICATE_DROPPED:
            assert isinstance(outcome, Duplicate) and outcome.event_id == record["event_id"]
            continue
        assert record["expected_at_validation"] == faults.ACCEPTED and isinstance(outcome, Accepted)
        event: Any = outcome.event
        assert (event.event_id, event.producer_id) == (record["event_id"], record["producer_id"])
        assert event.event_time == datetime.fromisoformat(record["event_time"])
    assert set(seen) == {faults.ACCEPTED, faults.DEAD_LETTERED, faults.DUPLICATE_DROPPED}


def test_a_cut_off_malformed_payload_is_kept_whole_and_says_what_it_still_can() -> None:
    stream = TerritoryStream(build_fleet(300, COMMUNES), START, 5, FaultRates(malformed=0.2))
    emissions = take(stream, 3000)
    records = _listed(stream, emissions).per_fault()[faults.MALFORMED]
    truncated = [r for r in records if not emissions[r["sequence"]].payload.endswith(b"}")]
    assert truncated and len(truncated) < len(records)
    for record in records:
        payload = emissions[record["sequence"]].payload
        assert base64.b64decode(record["payload_base64"]) == payload
        # A field is reported only when its whole value was sent.
        for name in ("event_id", "event_time", "producer_id"):
            if record[name] is not None:
                assert f'"{name}":"{record[name]}"'.encode() in payload
    assert any(r["event_id"] is None for r in truncated)
    assert any(r["event_time"] is None and r["event_id"] is not None for r in records)  # field removed


def test_a_skewed_device_record_gives_the_offset_of_its_clock() -> None:
    fleet = build_fleet(300, COMMUNES)
    # Values and schedule do not depend on the fault rates: the same seed without skew gives the
    # same readings, stamped by true clocks.
    skewed_stream = TerritoryStream(fleet, START, 9, FaultRates(clock_skew=0.3))
    skewed = take(skewed_stream, 3000)
    true_clocks = take(TerritoryStream(fleet, START, 9), 3000)
    records = _listed(skewed_stream, skewed).per_fault()[faults.CLOCK_SKEW]
    assert {r["clock_skew_s"] > 0 for r in records} == {True, False}
    for record in records:
        stamped = datetime.fromisoformat(record["event_time"]).timestamp()
        true_time = json.loads(true_clocks[record["sequence"]].payload)["event_time"]
        offset = stamped - datetime.fromisoformat(true_time).timestamp()
        assert abs(offset - record["clock_skew_s"]) <= 1  # stamps are whole seconds
        assert -1800 <= record["clock_skew_s"] <= faults.MAX_SKEW_AHEAD_S


def test_a_duplicated_reset_is_listed_twice_once_as_the_copy() -> None:
    stream = TerritoryStream(
        build_fleet(400, COMMUNES), START, 11, FaultRates(duplicate=0.3, index_reset=0.3)
    )
    per_fault = _listed(stream, take(stream, 6000)).per_fault()
    copies = [r for r in per_fault[faults.INDEX_RESET] if faults.DUPLICATE in r["faults"]]
    originals = {r["event_id"] for r in per_fault[faults.INDEX_RESET] if faults.DUPLICATE not in r["faults"]}
    assert copies and {r["event_id"] for r in copies} <= originals
    assert all(r["expected_at_validation"] == faults.DUPLICATE_DROPPED for r in copies)


def test_expected_at_validation_follows_the_fault_table() -> None:
    assert faults.expected_at_validation(()) == faults.ACCEPTED
    assert faults.expected_at_validation((faults.CLOCK_SKEW, faults.LATE)) == faults.ACCEPTED
    assert faults.expected_at_validation((faults.INDEX_RESET, faults.MALFORMED)) == faults.DEAD_LETTERED
    assert faults.expected_at_validation((faults.CLOCK_SKEW, faults.DUPLICATE)) == faults.DUPLICATE_DROPPED


class _RecordingPublisher:
    """Stands in for the MQTT publisher: keeps what it is given, acknowledges everything."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.sent = self.acknowledged = self.refused = 0

    def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> None:
        self.messages += messages
        self.sent = self.acknowledged = len(self.messages)

    def wait_acknowledged(self) -> int:
        return self.acknowledged

    def close(self) -> None:
        pass


@pytest.fixture
def publisher(monkeypatch: pytest.MonkeyPatch) -> _RecordingPublisher:
    recording = _RecordingPublisher()
    monkeypatch.setattr(simulation_run, "open_publisher", lambda *_args: recording)
    return recording


PLAN = simulation_run.SimulationPlan(
    devices=200, rate=None, count=2500, seed=4, start=START, faults=EVERY_FAULT
)


def test_the_run_writes_the_instances_of_what_it_published_when_asked(
    publisher: _RecordingPublisher, tmp_path: Path
) -> None:
    events_file = tmp_path / "instances.json"
    report = simulation_run.run_simulation(PLAN, REFERENCE, MqttTarget("unused", 0), events_file)
    detail = json.loads(events_file.read_text())
    assert report["report_events"] == str(events_file)
    assert detail["messages"] == report["messages"] == len(publisher.messages)
    assert (detail["seed"], detail["simulated_start"]) == (report["seed"], report["simulated_start"])
    assert {fault: len(records) for fault, records in detail["per_fault"].items()} == report["per_fault"]
    for records in detail["per_fault"].values():
        for record in records:
            topic, payload = publisher.messages[record["sequence"]]
            assert record["topic"] == topic
            assert record["payload_sha256"] == hashlib.sha256(payload).hexdigest()


def test_the_default_report_keeps_to_the_counts(publisher: _RecordingPublisher, tmp_path: Path) -> None:
    report = simulation_run.run_simulation(PLAN, REFERENCE, MqttTarget("unused", 0))
    assert "report_events" not in report and list(tmp_path.iterdir()) == []
    assert all(isinstance(n, int) for n in report["per_fault"].values())
    assert len(json.dumps(report)) < 3000


def test_simulate_refuses_a_report_file_it_could_not_write_before_publishing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def must_not_run(*_args: object) -> dict[str, Any]:
        raise AssertionError("published although the report could not be written")

    monkeypatch.setattr(simulation_run, "run_simulation", must_not_run)
    parser = argparse.ArgumentParser()
    simulate_command.add_arguments(parser)
    args = parser.parse_args(["--count", "10", "--report-events", str(tmp_path / "missing" / "f.json")])
    assert simulate_command.run(args, device_side_config(Settings())) == 2
    assert "--report-events: no folder" in capsys.readouterr().err
