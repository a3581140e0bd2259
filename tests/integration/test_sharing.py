"""Data-use agreements enforced on the real broker (issue 21, docs/sharing.md).

A real `zerocarbon share` runs as the sharer principal; parties are added as an operator adds
them (`zerocarbon principals add party`), agreements granted and revoked with `zerocarbon
agreements`. The harness writes validated events and indicator updates as the admin, as the
worker would, and each party reads its own topic with its own login. What each receives is
counted against an independent computation from the inputs and the agreements' terms.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import INDICATOR_TOPIC, share_topic, valid_topic
from sharing.agreement_terms import Detail, Purpose
from sharing.pseudonyms import keys_at, read_keys
from sharing.sharing_engine import AGREEMENT_HEADER, VERSION_HEADER
from tests.agreement_documents import agreement_document
from tests.integration.broker_clients import visible_topics
from zerocarbon.component_configs import tls_ca_file
from zerocarbon.processes import start_service, stop_child

RUN = uuid.uuid4().hex[:8]
PRODUCER = f"test-dso-{RUN}"
OTHER_PRODUCER = f"test-other-{RUN}"
EVENTS, ENERGY = Detail.PSEUDONYMISED_EVENTS, "urn:zerocarbon:family:energy"


def _zerocarbon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def _party(settings: Settings, name: str) -> KafkaAccess:
    done = _zerocarbon("principals", "add", "party", name)
    assert done.returncode == 0, done.stderr
    password = re.search(r"^Kafka password:\s+(\S+)$", done.stdout, re.M)
    assert password is not None, done.stdout
    return KafkaAccess(settings.kafka_bootstrap, name, password.group(1), ca_file=tls_ca_file(settings))


def _agreement(
    name: str, party: str, detail: Detail, targets: list[str], until: datetime | None = None
) -> dict[str, Any]:
    """An agreement in force from an hour ago: research on PRODUCER's events, or steering by
    commune aggregates of an hour and longer."""
    events = detail is Detail.PSEUDONYMISED_EVENTS
    return agreement_document(
        name,
        party=party,
        detail=detail,
        targets=targets,
        purposes=[Purpose.SCIENTIFIC_RESEARCH if events else Purpose.TERRITORIAL_STEERING],
        start=datetime.now(UTC) - timedelta(hours=1),
        end=until,
        producers=[PRODUCER] if events else None,
        window=None if events else "1h",
        attribution=f"test attribution {name}",
    )


def _grant(folder: Path, document: dict[str, Any]) -> None:
    path = folder / f"{document['uid'].rsplit(':', 1)[1]}.jsonld"
    path.write_text(json.dumps(document), encoding="utf-8")
    done = _zerocarbon("agreements", "grant", str(path))
    assert done.returncode == 0, done.stderr


def _reading(meter: str, sector: str, producer: str, minute: int) -> dict[str, Any]:
    at = datetime(2026, 12, 1, 8, 0, tzinfo=UTC) + timedelta(minutes=minute)
    return {
        "schema": "energy.reading",
        "event_id": f"{meter}-{int(at.timestamp())}",
        "producer_id": producer,
        "schema_version": 1,
        "event_time": at.isoformat().replace("+00:00", "Z"),
        "ingestion_time": datetime.now(UTC).isoformat(),
        "meter_id": meter,
        "commune": "17300",
        "sector": sector,
        "carrier": "electricity",
        "quantity": 1.5,
        "unit": "kWh",
        "kind": "interval",
        "interval_start": (at - timedelta(minutes=10)).isoformat().replace("+00:00", "Z"),
    }


def _update(indicator: str, window: str, commune: str | None, value: float, hour: int) -> dict[str, Any]:
    start = datetime(2026, 12, 1, hour, tzinfo=UTC)
    return {
        "schema": "indicator.update",
        "schema_version": 1,
        "indicator": indicator,
        "unit": "kWh",
        "window": window,
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(hours=1)).isoformat(),
        "dimensions": {"commune": commune} if commune else {},
        "value": value,
        "final": True,
        "revision": 0,
        "updated_at": datetime.now(UTC).isoformat(),
    }


async def _publish(admin: KafkaAccess, records: list[tuple[str, Any]]) -> None:
    producer = AIOKafkaProducer(**admin.client_options(), acks="all")
    await producer.start()
    try:
        for topic, value in records:
            await producer.send_and_wait(topic, json.dumps(value).encode(), key=b"17300")
    finally:
        await producer.stop()


@dataclass
class Received:
    value: Any
    headers: dict[str, bytes]
    timestamp_ms: int


async def _read_own_topic(
    access: KafkaAccess, partitions: int, idle_seconds: float = 4.0, party: str | None = None
) -> list[Received]:
    """Everything on the party's topic (``party``'s: another's), read with the party's login,
    until nothing new for ``idle_seconds``."""
    consumer = AIOKafkaConsumer(**access.client_options(), enable_auto_commit=False)
    await consumer.start()
    out: list[Received] = []
    try:
        tps = [TopicPartition(share_topic(party or access.username or ""), p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while batch := await consumer.getmany(timeout_ms=int(idle_seconds * 1000)):
            for records in batch.values():
                out += [Received(json.loads(r.value), dict(r.headers), r.timestamp) for r in records]
    finally:
        await consumer.stop()
    return out


@pytest.fixture(scope="module")
def sharing(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A `zerocarbon share` in a group of its own (starting at the topics' ends), its key file."""
    folder = tmp_path_factory.mktemp("sharing")
    env = {"ZC_SHARING_GROUP": f"zc-sharing-test-{RUN}", "ZC_PSEUDONYM_KEY_FILE": str(folder / "keys.json")}
    keys_at(folder / "keys.json")  # the suite's audit has shared before: no key is made silently
    proc = start_service(["share"], folder / "share.log", env=env)
    try:
        yield folder
    finally:
        stop_child(proc)


def _pseudonym(key_file: Path, value: str) -> str:
    """The pseudonym computed independently: HMAC-SHA256 under the current key, 128 bits."""
    keys = read_keys(key_file)
    digest = hmac.new(keys.keys[keys.current], value.encode(), hashlib.sha256).hexdigest()[:32]
    return f"ps{keys.current}:{digest}"


def test_two_parties_receive_what_their_agreements_allow_and_a_third_nothing(
    local_stack: Settings, kafka_admin: KafkaAccess, sharing: Path
) -> None:
    lab, city, stranger = (f"test-{who}-{RUN}" for who in ("lab", "city", "stranger"))
    lab_access, city_access, stranger_access = (_party(local_stack, n) for n in (lab, city, stranger))
    _grant(sharing, _agreement(f"lab-{RUN}", lab, EVENTS, [ENERGY]))
    city_targets = ["urn:zerocarbon:indicator:passenger_km", "urn:zerocarbon:indicator:energy_consumed_kwh"]
    _grant(sharing, _agreement(f"city-{RUN}", city, Detail.COMMUNE_AGGREGATES, city_targets))
    time.sleep(2)  # the stage reads the grants at its next batch (a quarter of a second)

    household = [_reading(f"hh-{RUN}-{i}", "residential", PRODUCER, i) for i in range(6)]
    offices = [_reading(f"office-{RUN}-{i}", "tertiary", PRODUCER, i) for i in range(3)]
    others = [_reading(f"foreign-{RUN}-{i}", "residential", OTHER_PRODUCER, i) for i in range(4)]
    updates = [
        _update("passenger_km", "1h", "17300", 120.0, 8),
        _update("passenger_km", "1d", "17300", 2400.0, 0),
        _update("passenger_km", "15m", "17300", 30.0, 8),  # finer than the agreement allows
        _update("energy_consumed_kwh", "1h", "17300", 42.0, 8),  # below the territory: secret
        _update("mobility_emissions_kgco2e", "1h", "17300", 9.0, 8),  # not a target
    ]
    asyncio.run(
        _publish(
            kafka_admin,
            [
                (valid_topic("energy"), household[:3] + others[:2]),
                (valid_topic("energy"), offices + household[3:]),
                (valid_topic("energy"), others[2:]),  # nothing of it for anyone
                *((INDICATOR_TOPIC, u) for u in updates),
            ],
        )
    )
    partitions = local_stack.kafka_partitions
    lab_got = asyncio.run(_read_own_topic(lab_access, partitions))
    city_got = asyncio.run(_read_own_topic(city_access, partitions))

    # The lab: its producer's readings, each once, household meters as their keyed pseudonym.
    events = [event for record in lab_got for event in record.value]
    expected = household + offices
    assert len(events) == len(expected)
    key_file = sharing / "keys.json"
    shared_ids = sorted(e["meter_id"] for e in events)
    wanted_ids = sorted(
        _pseudonym(key_file, r["meter_id"]) if r["sector"] == "residential" else r["meter_id"]
        for r in expected
    )
    assert shared_ids == wanted_ids
    everything = json.dumps([r.value for r in lab_got])
    assert all(r["meter_id"] not in everything for r in household), "a household meter id went out in clear"
    assert all(r["meter_id"] not in everything for r in others), "another producer's reading was shared"
    lab_headers = {(r.headers[AGREEMENT_HEADER], len(r.headers[VERSION_HEADER])) for r in lab_got}
    assert lab_headers == {(f"urn:zerocarbon:agreement:lab-{RUN}".encode(), 64)}

    # The city: hourly and daily passenger-km, and the commune's energy as secret, nothing else.
    cells = sorted(
        (c["indicator"], c["window"], c["status"], c["value"]) for record in city_got for c in record.value
    )
    assert cells == [
        ("energy_consumed_kwh", "1h", "secret", None),
        ("passenger_km", "1d", "published", 2400.0),
        ("passenger_km", "1h", "published", 120.0),
    ]
    assert {c["attribution"] for record in city_got for c in record.value} == {f"test attribution city-{RUN}"}

    # Each party may see its own topic and nothing else; the stranger sees none, and reading
    # another's gets it nothing (Kafka answers "not authorized", aiokafka logs it and waits).
    assert asyncio.run(visible_topics(lab_access)) == {share_topic(lab)}
    assert asyncio.run(visible_topics(city_access)) == {share_topic(city)}
    assert asyncio.run(visible_topics(stranger_access)) == set()
    assert asyncio.run(_read_own_topic(stranger_access, partitions, idle_seconds=2, party=lab)) == []

    # The audit balances with what each party received.
    assert _audited_items(lab) == {f"urn:zerocarbon:agreement:lab-{RUN}": (len(lab_got), len(events), 0)}
    assert _audited_items(city) == {f"urn:zerocarbon:agreement:city-{RUN}": (len(city_got), 3, 1)}
    assert _audited_items(stranger) == {}


def _audited_items(party: str) -> dict[str, tuple[int, int, int]]:
    done = _zerocarbon("agreements", "audit", party, "--json")
    assert done.returncode == 0, done.stderr
    totals: dict[str, tuple[int, int, int]] = {}
    for line in done.stdout.splitlines():
        record = json.loads(line)
        if record["event"] == "release":
            records, items, secret = totals.get(record["agreement"], (0, 0, 0))
            totals[record["agreement"]] = (
                records + record["records"],
                items + record["items"],
                secret + record["secret"],
            )
    return totals


def _stream(admin: KafkaAccess, seconds: float, meter_prefix: str) -> None:
    """A residential reading of PRODUCER every 0.2 s for ``seconds``."""

    async def run() -> None:
        producer = AIOKafkaProducer(**admin.client_options(), acks="all")
        await producer.start()
        try:
            end, i = time.monotonic() + seconds, 0
            while time.monotonic() < end:
                reading = _reading(f"{meter_prefix}-{i}", "residential", PRODUCER, i % 600)
                await producer.send_and_wait(
                    valid_topic("energy"), json.dumps([reading]).encode(), key=b"17300"
                )
                i += 1
                await asyncio.sleep(0.2)
        finally:
            await producer.stop()

    asyncio.run(run())


def test_a_revoked_agreement_stops_its_party_s_flow_within_five_seconds(
    local_stack: Settings, kafka_admin: KafkaAccess, sharing: Path
) -> None:
    party = f"test-revoked-{RUN}"
    access = _party(local_stack, party)
    _grant(sharing, _agreement(f"revoked-{RUN}", party, EVENTS, [ENERGY]))
    time.sleep(2)
    _stream(kafka_admin, 3, f"before-{RUN}")
    done = _zerocarbon("agreements", "revoke", f"revoked-{RUN}", "--reason", "test")
    assert done.returncode == 0, done.stderr
    revoked_ms = time.time() * 1000
    _stream(kafka_admin, 8, f"after-{RUN}")
    got = asyncio.run(_read_own_topic(access, local_stack.kafka_partitions))
    assert got, "nothing was shared before the revocation"
    latest = max(r.timestamp_ms for r in got)
    assert latest <= revoked_ms + 5000, f"released {(latest - revoked_ms) / 1000:.1f} s after the revocation"
    audit = _zerocarbon("agreements", "audit", party)
    assert re.search(rf"revoke\s+urn:zerocarbon:agreement:revoked-{RUN} \w+: test", audit.stdout), (
        audit.stdout
    )


def test_an_expired_agreement_stops_its_party_s_flow_and_the_audit_says_so(
    local_stack: Settings, kafka_admin: KafkaAccess, sharing: Path
) -> None:
    party = f"test-expiring-{RUN}"
    access = _party(local_stack, party)
    # In force for 20 s from now: the grant itself (a command starting) takes some of them.
    until = datetime.now(UTC) + timedelta(seconds=20)
    _grant(sharing, _agreement(f"expiring-{RUN}", party, EVENTS, [ENERGY], until))
    _stream(kafka_admin, (until - datetime.now(UTC)).total_seconds() + 8, f"expiring-{RUN}")
    got = asyncio.run(_read_own_topic(access, local_stack.kafka_partitions))
    assert got, "nothing was shared while the agreement was in force"
    latest = max(r.timestamp_ms for r in got)
    assert latest <= until.timestamp() * 1000 + 5000, "released more than 5 s after the agreement's end"
    audit = _zerocarbon("agreements", "audit", party, "--json")
    events = [json.loads(line)["event"] for line in audit.stdout.splitlines()]
    assert events[0] == "grant" and "expire" in events, events


def test_the_public_agreement_s_day_becomes_a_csv_and_its_dcat_record(
    local_stack: Settings, kafka_admin: KafkaAccess, sharing: Path
) -> None:
    name = f"open-{RUN}"
    _grant(
        sharing,
        _agreement(name, "public", Detail.COMMUNE_AGGREGATES, ["urn:zerocarbon:indicator:traffic_vehicles"]),
    )
    time.sleep(2)
    day = datetime(2026, 11, 20, tzinfo=UTC)

    def update(commune: str, value: float, revision: int, window: str = "1d") -> dict[str, Any]:
        cell = _update("traffic_vehicles", window, commune, value, 0)
        return {**cell, "window_start": day.isoformat(), "revision": revision, "unit": "vehicles"}

    asyncio.run(
        _publish(
            kafka_admin,
            [
                (INDICATOR_TOPIC, update("17300", 1000.0, 0)),
                (INDICATOR_TOPIC, update("17300", 1200.0, 1)),  # the day corrected by late counts
                (INDICATOR_TOPIC, update("17028", 300.0, 0)),
                (INDICATOR_TOPIC, update("17028", 40.0, 0, window="15m")),  # finer than the agreement
            ],
        )
    )
    time.sleep(3)
    done = _zerocarbon("agreements", "open-data", "2026-11-20", "--out", str(sharing / "open"))
    assert done.returncode == 0, done.stderr
    folder = sharing / "open" / "2026-11-20"
    rows = list(csv.DictReader(io.StringIO((folder / f"{name}.csv").read_text(encoding="utf-8"))))
    assert [(r["indicator"], r["window"], r["commune"], r["value"], r["revision"]) for r in rows] == [
        ("traffic_vehicles", "1d", "17028", "300.0", "0"),
        ("traffic_vehicles", "1d", "17300", "1200.0", "1"),
    ]
    record = json.loads((folder / f"{name}.dcat.jsonld").read_text(encoding="utf-8"))
    checksum = record["dcat:distribution"][0]["spdx:checksum"]["spdx:checksumValue"]
    assert checksum == hashlib.sha256((folder / f"{name}.csv").read_bytes()).hexdigest()
