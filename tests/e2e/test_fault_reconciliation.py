"""Every fault the simulator injects, reconciled instance by instance with what reached Kafka.

A simulated territory with every fault at a few per cent goes through the bridge and a worker
whose indicator stage starts afresh on every typed partition. The simulator lists which
messages carry which fault (``zerocarbon simulate --report-events``); each instance must be
where docs/devices.md and docs/indicators.md say:

- malformed: on zc.deadletter (validation stage), its MQTT topic as origin, its bytes verbatim;
- duplicate: its event id once on its typed topic, and the copy in validation's duplicate count;
- out of order, late, clock skew, offline backlog, index reset: its event id once on its typed
  topic, with the event time the device stamped (validation keeps a skewed time as it was sent);
- at the indicator stage: a reading whose 1-minute window had closed when it arrived (the
  partition's watermark at or past the window's end plus the grace) is counted late, through
  the corrections path, every other one on time; each cumulative index that fell is an
  ``index_reset`` dead letter naming its meter and comes from a reset the simulator injected,
  each injected reset is reported unless the counter could not be seen to fall; no
  consumption is negative, and each series' year to date is the consumption its readings carry.

On failure, the message lists the instances that are not where they should be, fault by fault.

Found by this test and fixed: the indicator stage took a fall from an index in the top tenth
of its power of ten (9.6 kWh, 95 kWh: a meter reset shortly before) for a counter that
wrapped, and counted the wrap; registers are now at least 10 000 kWh
(streams/indicators/index_deltas.py). ``test_a_reset_soon_after_a_reset_is_reported_as_a_reset`` keeps
it fixed; the reconciliation still accounts for a genuine wrap by the engine's rule.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import DEAD_LETTER_TOPIC, INDICATOR_TOPIC, valid_topic
from schemas.dead_letter import DeadLetter
from schemas.families import FAMILIES
from schemas.local_calendar import ZoneCalendar
from sensors import faults
from streams.kafka_admin import records_after, topic_ends
from tests.e2e.fault_checks import (
    Findings,
    check_consumption,
    check_duplicates,
    check_index_resets,
    check_indicator_counts,
    check_malformed,
    check_typed,
)
from tests.e2e.fault_expectations import expected_indicator_stage, typed_events
from tests.e2e.simulated_runs import (
    forget_bridge,
    fresh_worker,
    no_factor_ids,
    outcomes_of,
    quiet,
    settled,
    wait_until,
)
from tests.integration.golden_meters import RESIDENTIAL, forget_indicator_state, produce_raw
from tests.integration.worker_runs import start_worker
from tests.simulate_command import simulate
from zerocarbon.demo import worker_counters
from zerocarbon.processes import spawn_command, stop_child, wait_ready

DEVICES = 360
MESSAGES = 4000
FAULT_RATES = {
    "--malformed": 0.03,
    "--duplicate": 0.03,
    "--out-of-order": 0.03,
    "--late": 0.03,
    "--clock-skew": 0.1,
    "--offline": 0.003,
    "--index-reset": 0.08,
}


async def test_each_injected_fault_arrives_where_it_should(
    settings: Settings, kafka_admin: KafkaAccess, tmp_path: Path
) -> None:
    registry = tmp_path / "reference"
    simulate("--devices", str(DEVICES), "--write-registry", str(registry))
    bridge_id = f"zc-e2e-faults-{uuid.uuid4().hex[:8]}"
    worker = await fresh_worker(kafka_admin, settings, tmp_path / "worker.log", registry)
    bridge = spawn_command(["bridge", "--client-id", bridge_id], tmp_path / "bridge.log")
    try:
        wait_ready(bridge, tmp_path / "bridge.log")
        before = await quiet(settings)
        assert not outcomes_of(before), f"a backlog reached the indicator stage first: {before['indicators']}"
        valid_topics = [valid_topic(name) for name in FAMILIES]
        starts = await topic_ends(kafka_admin, [*valid_topics, DEAD_LETTER_TOPIC, INDICATOR_TOPIC])
        events_file = tmp_path / "fault-instances.json"
        rates = [str(arg) for option, rate in FAULT_RATES.items() for arg in (option, rate)]
        report = await asyncio.to_thread(
            simulate, "--devices", str(DEVICES), "--count", str(MESSAGES), "--rate", "2000",
            "--seed", str(uuid.uuid4().int % (1 << 30)), "--report-events", str(events_file), *rates,
        )  # fmt: skip
        assert report["acknowledged"] == report["messages"] >= MESSAGES
        detail = json.loads(events_file.read_text())
        instances: dict[str, list[dict[str, Any]]] = detail["per_fault"]
        assert {fault: len(records) for fault, records in instances.items()} == report["per_fault"]
        assert all(report["per_fault"][fault] > 0 for fault in faults.FAULTS), report["per_fault"]

        expected = report["expected_at_validation"]
        received = before["received"] + report["messages"]
        await wait_until(settings, lambda c: c["received"] >= received, timeout=120)
        outcomes = outcomes_of(before) + expected["accepted"]
        await wait_until(settings, lambda c: outcomes_of(c) >= outcomes, timeout=120)
        await settled(kafka_admin, [INDICATOR_TOPIC, DEAD_LETTER_TOPIC])  # the flush publishes every second
        after = worker_counters(settings)
        written = await records_after(kafka_admin, starts)
    finally:
        stop_child(bridge)
        stop_child(worker)
        forget_bridge(bridge_id)

    typed = typed_events(written, settings.kafka_partitions)
    letters = [
        DeadLetter.model_validate_json(value) for topic, value in written if topic == DEAD_LETTER_TOPIC
    ]
    updates = [json.loads(value) for topic, value in written if topic == INDICATOR_TOPIC]
    no_factor = no_factor_ids(letters)
    calendar = ZoneCalendar(settings.time_zone)
    stage = expected_indicator_stage(typed, no_factor, settings.indicator_grace_seconds, registry, calendar)

    findings = Findings()
    findings.expect(
        "validation: accepted, dead-lettered, duplicates as the report expects",
        len(typed) == expected["accepted"]
        and after["received"] - before["received"] == report["messages"]
        and after["balanced"],
        f"{len(typed)} on the typed topics, {after['received'] - before['received']} received; "
        f"report {expected}",
    )
    check_malformed(findings, instances[faults.MALFORMED], letters)
    check_typed(findings, detail, typed)
    check_duplicates(findings, instances[faults.DUPLICATE], before, after)
    resets = check_index_resets(findings, instances[faults.INDEX_RESET], typed, stage, letters)
    check_indicator_counts(findings, stage, before["indicators"], after["indicators"])
    check_consumption(findings, stage, updates, calendar)

    findings.summary.append(f"{report['messages']} messages, seed {report['seed']}; per fault:")
    for fault in faults.FAULTS:
        verdicts = Counter(
            stage.verdicts.get(str(r["event_id"]), "not on the typed topic") for r in instances[fault]
        )
        findings.summary.append(
            f"  {fault:<16} {len(instances[fault]):>5}  indicator stage: {dict(verdicts)}"
        )
    skews = [r["clock_skew_s"] for r in instances[faults.CLOCK_SKEW]]
    findings.summary.append(
        f"  clock skew: {sum(s > 0 for s in skews)} messages ahead (up to {max(skews):g} s), "
        f"{sum(s < 0 for s in skews)} behind, kept as stamped"
    )
    findings.summary.append(f"  index resets: {resets}")
    print(findings.report())
    assert not findings.failures, findings.report()
    assert resets.get("reported", 0) > 0, resets
    assert stage.late_min > 0 and stage.late_max < stage.contributions, (stage.late_min, stage.contributions)


async def test_a_reset_soon_after_a_reset_is_reported_as_a_reset(
    settings: Settings, kafka_admin: KafkaAccess, tmp_path: Path
) -> None:
    meter, run = RESIDENTIAL, uuid.uuid4().hex[:8]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    readings = [(0, 42_000.0), (15, 9.6), (30, 4.7)]  # minutes after start, index in kWh
    events = [
        {
            "event_id": f"reset-twice-{run}-{k}", "producer_id": "golden-tests",
            "event_time": (start + timedelta(minutes=minutes)).isoformat(), "meter_id": meter.meter_id,
            "commune": meter.commune, "sector": meter.sector, "carrier": "electricity",
            "quantity": index, "unit": "kWh", "kind": "index",
        }
        for k, (minutes, index) in enumerate(readings)
    ]  # fmt: skip
    # The meter's last index: none.
    await forget_indicator_state(kafka_admin, settings, [meter.partition(settings)])
    worker = start_worker(tmp_path / "worker.log")
    try:
        before = await quiet(settings)
        starts = await topic_ends(kafka_admin, [DEAD_LETTER_TOPIC])
        await produce_raw(kafka_admin, meter, [json.dumps(events).encode()])
        await wait_until(settings, lambda c: outcomes_of(c) >= outcomes_of(before) + len(events), timeout=60)
        # Counted when applied; dead-lettered by the next flush, with the updates (at most a
        # second later), before the checkpoint that covers them.
        expected = [events[1]["event_id"], events[2]["event_id"]]
        deadline = time.monotonic() + 30
        while (resets := index_resets(await records_after(kafka_admin, starts))) != expected:
            assert time.monotonic() < deadline, resets
            await asyncio.sleep(0.5)
    finally:
        stop_child(worker)


def index_resets(written: list[tuple[str, bytes]]) -> list[str]:
    """The event ids of the ``index_reset`` dead letters among ``written``, in order."""
    return [
        json.loads(letter.payload)["event_id"]
        for letter in (DeadLetter.model_validate_json(value) for _, value in written)
        if letter.stage == "indicators" and letter.errors[0].type == "index_reset"
    ]
