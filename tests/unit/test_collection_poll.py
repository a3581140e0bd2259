"""One source's polls (collectors/collection_run.py), with a fake source serving the recorded
answers of tests/recorded_sources/ and a fake Kafka outbox: no network, no broker.

What is proven: every row a poll reads is accounted for (after each poll ``rows == sent +
already_collected + sum(rows_dead_lettered) + already_refused + unlisted_devices``); a
snapshot feed served again sends nothing, and its next snapshot only the stations that
changed; Opendatasoft pages are followed and a restart asks only from its cursor; a row the
mapping cannot read (a renamed field) is dead-lettered once with its reason, not at every
poll; an answer without records (a 503 after its retries, HTML for JSON) is dead-lettered
whole on zc.deadletter with stage "collect" and the HTTP address it came from, and the poll
says it failed; a 304 sends nothing; and a Kafka failure marks nothing collected, so the next
poll sends the page again. Why: the collector's promise is that a source's records are all
either in the raw topic or in a dead letter saying why, once, across restarts and failures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from collectors.collection_run import KafkaRecord, SourceCollection, request_key
from collectors.collector_file import CollectorFile, load_collector
from collectors.polite_fetch import Answer, FetchFailed, FetchTally, PoliteFetcher
from collectors.source_cursor import load_cursor
from collectors.source_pages import Request
from schemas.dead_letter import DeadLetter
from tests.collector_devices import registry_with_test_devices

RECORDED = Path(__file__).resolve().parents[1] / "recorded_sources"
PORT = "8765"
BASE = f"http://127.0.0.1:{PORT}"
ODS_URL = f"{BASE}/api/explore/v2.1/catalog/datasets/disponibilite-parkings/records"
RAW_MOBILITY = "zc.raw.mobility"
DEAD_LETTERS = "zc.deadletter"

REGISTRY = registry_with_test_devices()


def _recorded(name: str) -> bytes:
    return (RECORDED / name).read_bytes().replace(b"{PORT}", PORT.encode())


def _route(request: Request) -> str:
    """What the fake source serves a request by: its address, and its page for Opendatasoft."""
    offset = request.params.get("offset")
    return request.url if offset is None else f"{request.url}#offset={offset}"


@dataclass
class FakeSource:
    """Stands for PoliteFetcher: answers from recorded files, by address (``serve``)."""

    routes: dict[str, bytes] = field(default_factory=dict)
    tally: FetchTally = field(default_factory=FetchTally)
    asked: list[tuple[Request, dict[str, str] | None]] = field(default_factory=list)
    failure: FetchFailed | None = None
    etags: bool = False  # an ETag on each answer, and 304 to a matching If-None-Match
    answer: Callable[[Request], bytes] | None = None  # instead of routes

    def serve(self, route: str, name: str) -> None:
        self.routes[route] = _recorded(name)

    async def fetch(self, request: Request, validators: dict[str, str] | None) -> Answer:
        self.tally.requests += 1
        self.asked.append((request, validators))
        if self.failure is not None:
            raise self.failure
        body = self.answer(request) if self.answer is not None else self.routes[_route(request)]
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"' if self.etags else None
        url = request_key(request)
        if etag is not None and validators is not None and validators.get("etag") == etag:
            self.tally.not_modified += 1
            return Answer(304, b"", url, etag, None)
        return Answer(200, body, url, etag, None)


class KafkaAway(Exception):
    pass


@dataclass
class FakeOutbox:
    """Stands for Kafka: keeps what it acknowledged; ``fail_on``: deliveries (1, 2...) it refuses."""

    records: list[KafkaRecord] = field(default_factory=list)
    deliveries: int = 0
    fail_on: set[int] = field(default_factory=set)

    async def deliver(self, records: Sequence[KafkaRecord]) -> None:
        self.deliveries += 1
        if self.deliveries in self.fail_on:
            raise KafkaAway("no broker acknowledged the batch")
        self.records.extend(records)

    def raw(self) -> list[dict[str, Any]]:
        return [json.loads(value) for topic, _, value in self.records if topic.startswith("zc.raw.")]

    def letters(self) -> list[DeadLetter]:
        return [DeadLetter.model_validate_json(v) for topic, _, v in self.records if topic == DEAD_LETTERS]


def _collector(tmp_path: Path, name: str, edit: Callable[[str], str] = lambda text: text) -> CollectorFile:
    text = (RECORDED / "collectors" / f"{name}.toml").read_text(encoding="utf-8")
    path = tmp_path / f"{name}.toml"
    path.write_text(edit(text).replace("{PORT}", PORT), encoding="utf-8")
    return load_collector(path, REGISTRY)


def _collection(
    tmp_path: Path,
    name: str,
    source: FakeSource,
    outbox: FakeOutbox,
    edit: Callable[[str], str] = lambda t: t,
) -> SourceCollection:
    collector = _collector(tmp_path, name, edit)
    cursor = load_cursor(tmp_path / "state" / f"{name}.json")
    return SourceCollection(collector, cursor, cast(PoliteFetcher, source), outbox)


def _restart(collection: SourceCollection) -> None:
    """The cursor as a restarted collector finds it: read back from its file."""
    collection.cursor = load_cursor(collection.cursor.path)


def _balanced(collection: SourceCollection) -> None:
    t = collection.tally
    accounted = (
        t.sent
        + t.already_collected
        + sum(t.rows_dead_lettered.values())
        + t.already_refused
        + t.unlisted_devices
    )
    assert t.rows == accounted, collection.report()


def _utc(hour: int, minute: int, second: int = 0) -> str:
    return datetime(2026, 12, 6, hour, minute, second, tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _gbfs(version: str, snapshot: str = "station_status.json") -> FakeSource:
    source = FakeSource()
    source.serve(f"{BASE}/gbfs-{version}/gbfs.json", f"gbfs-{version}/gbfs.json")
    source.serve(f"{BASE}/gbfs-{version}/station_status.json", f"gbfs-{version}/{snapshot}")
    return source


GBFS = [("gbfs-v2", "2.3", "bike-17300-02"), ("gbfs-v3", "3.0", "bike-17300-03")]


@pytest.mark.parametrize(("name", "version", "prefix"), GBFS)
async def test_a_gbfs_snapshot_is_sent_once_and_its_next_one_only_for_what_changed(
    tmp_path: Path, name: str, version: str, prefix: str
) -> None:
    source, outbox = _gbfs(version), FakeOutbox()
    collection = _collection(tmp_path, name, source, outbox)

    assert await collection.poll() is True
    _balanced(collection)
    assert [r[0] for r in outbox.records] == [RAW_MOBILITY] * 4
    assert {key for _, key, _ in outbox.records} == {b"17300"}
    first = outbox.raw()
    assert [p["device_id"] for p in first] == [f"{prefix}{k:02d}" for k in range(1, 5)]
    assert first[0] | {"event_id": None} == {
        "schema": "mobility.event",
        "device_id": f"{prefix}01",
        "commune": "17300",
        "producer_id": f"collect-test-gbfs{version[0]}",
        "kind": "bike_station_status",
        "available_bike_number": 7,
        "free_slot_number": 12,
        "total_slot_number": 20,  # 7 bikes + 1 disabled + 12 docks + 0 disabled
        "event_id": None,
        "event_time": _utc(10, 0, 40),  # GBFS 3.0's +01:00 offset normalised to UTC
    }
    assert [r[0] for r in source.asked] == [
        Request(f"{BASE}/gbfs-{version}/gbfs.json", {}, what="discovery"),
        Request(f"{BASE}/gbfs-{version}/station_status.json", {}),
    ]

    # The same snapshot again, after a restart: nothing sent.
    _restart(collection)
    assert await collection.poll() is True
    _balanced(collection)
    assert len(outbox.raw()) == 4
    assert (collection.tally.sent, collection.tally.already_collected) == (4, 4)

    # The next snapshot: LR-001 and LR-003 changed; LR-002 and LR-004 are served unchanged.
    source.serve(f"{BASE}/gbfs-{version}/station_status.json", f"gbfs-{version}/station_status.2.json")
    _restart(collection)
    assert await collection.poll() is True
    _balanced(collection)
    changed = outbox.raw()[4:]
    assert [(p["device_id"], p["available_bike_number"], p["event_time"]) for p in changed] == [
        (f"{prefix}01", 5, _utc(10, 10)),
        (f"{prefix}03", 13, _utc(10, 10)),
    ]
    assert (collection.tally.rows, collection.tally.sent, collection.tally.already_collected) == (12, 6, 6)
    assert collection.tally.polls == 3 and not collection.tally.failed_polls


def _opendatasoft(page1: str = "opendatasoft/records.page1.json") -> FakeSource:
    source = FakeSource()
    source.serve(f"{ODS_URL}#offset=0", page1)
    source.serve(f"{ODS_URL}#offset=5", "opendatasoft/records.page2.json")
    return source


async def test_opendatasoft_pages_are_followed_and_a_restart_asks_from_the_cursor(tmp_path: Path) -> None:
    source, outbox = _opendatasoft(), FakeOutbox()
    collection = _collection(tmp_path, "opendatasoft-car-parks", source, outbox)

    assert await collection.poll() is True
    _balanced(collection)
    sent = outbox.raw()
    assert len(sent) == 8 and collection.tally.sent == 8
    assert [r.params for r, _ in source.asked] == [
        {"limit": "5", "offset": "0", "order_by": "date_maj"},
        {"limit": "5", "offset": "5", "order_by": "date_maj"},
    ]
    assert sent[0]["producer_id"] == "collect-test-ods" and sent[0]["kind"] == "parking_occupancy"
    assert (sent[0]["occupied_spot_number"], sent[0]["total_spot_number"]) == (399 - 229, 399)
    assert sent[-1]["event_time"] == _utc(10, 20)

    _restart(collection)
    assert await collection.poll() is True
    _balanced(collection)
    # Newest sent: P-ENCAN 10:15, P-VERDUN 10:20; asking from the older misses neither.
    assert source.asked[2][0].params == {
        "limit": "5",
        "offset": "0",
        "order_by": "date_maj",
        "where": "date_maj >= date'2026-12-06T10:15:00Z'",
    }
    assert len(outbox.raw()) == 8 and collection.tally.already_collected == 8


async def test_a_renamed_field_is_dead_lettered_once_per_row(tmp_path: Path) -> None:
    source, outbox = _opendatasoft(page1="failures/renamed_field.json"), FakeOutbox()
    collection = _collection(tmp_path, "opendatasoft-car-parks", source, outbox)

    assert await collection.poll() is True  # the page was read: its rows are accounted for
    _balanced(collection)
    reason = "no column 'places_disponibles'"
    assert collection.tally.rows_dead_lettered == {reason: 5}
    assert collection.tally.sent == 3  # page 2 has the field
    letters = outbox.letters()
    assert len(letters) == 5
    assert {key for topic, key, _ in outbox.records if topic == DEAD_LETTERS} == {b"mobility"}
    renamed = json.loads(_recorded("failures/renamed_field.json"))["results"]
    for letter, row in zip(letters, renamed, strict=True):
        assert (letter.stage, letter.family) == ("collect", "mobility")
        assert [(e.path, e.type) for e in letter.errors] == [("", "unmappable_record")]
        assert letter.reason == f"opendatasoft-car-parks: {reason}"
        assert letter.origin.transport == "http" and letter.origin.topic.startswith(ODS_URL)
        assert json.loads(letter.payload) == row
        assert letter.producer_id is None

    _restart(collection)  # the refused rows are remembered on disk
    assert await collection.poll() is True
    _balanced(collection)
    assert len(outbox.letters()) == 5  # none again
    assert collection.tally.already_refused == 5
    assert collection.tally.rows_dead_lettered == {reason: 5}
    assert collection.tally.already_collected == 3


async def test_an_unlisted_station_is_dead_lettered_once_or_counted_when_skipped(tmp_path: Path) -> None:
    def unlist(text: str) -> str:
        return text.replace('LR-003 = "bike-17300-0203"\n', "").replace('LR-004 = "bike-17300-0204"\n', "")

    outbox = FakeOutbox()
    collection = _collection(tmp_path, "gbfs-v2", _gbfs("2.3"), outbox, unlist)
    for _ in range(3):
        assert await collection.poll() is True
        _balanced(collection)
    assert [letter.errors[0].message for letter in outbox.letters()] == [
        "gbfs-v2: source device 'LR-003' has no device in the mapping",
        "gbfs-v2: source device 'LR-004' has no device in the mapping",
    ]
    assert (collection.tally.already_refused, collection.tally.sent) == (4, 2)

    def skip(text: str) -> str:
        return unlist(text).replace("[source]\n", '[source]\nunlisted_devices = "skip"\n')

    outbox = FakeOutbox()
    (tmp_path / "skip").mkdir()
    collection = _collection(tmp_path / "skip", "gbfs-v2", _gbfs("2.3"), outbox, skip)
    assert await collection.poll() is True
    _balanced(collection)
    assert outbox.letters() == [] and collection.tally.unlisted_devices == 2


async def test_a_kafka_failure_marks_nothing_collected_and_the_next_poll_sends_again(tmp_path: Path) -> None:
    outbox = FakeOutbox(fail_on={1})
    collection = _collection(tmp_path, "gbfs-v2", _gbfs("2.3"), outbox)
    with pytest.raises(KafkaAway):
        await collection.poll()
    assert collection.cursor.devices == {} and not collection.cursor.path.exists()
    assert collection.tally.rows == 0 and collection.tally.sent == 0
    _balanced(collection)

    assert await collection.poll() is True
    _balanced(collection)
    assert len(outbox.raw()) == 4 and collection.tally.sent == 4


async def test_a_kafka_failure_on_page_two_resends_page_two_only(tmp_path: Path) -> None:
    outbox = FakeOutbox(fail_on={2})
    collection = _collection(tmp_path, "opendatasoft-car-parks", _opendatasoft(), outbox)
    with pytest.raises(KafkaAway):
        await collection.poll()
    _balanced(collection)
    assert len(outbox.raw()) == 5
    _restart(collection)  # page 1 was acknowledged, so it was saved
    assert set(collection.cursor.devices) == {"parking-17300-0004", "parking-17300-0016"}

    assert await collection.poll() is True
    _balanced(collection)
    times = [p["event_time"] for p in outbox.raw()]
    assert times[5:] == [_utc(10, 10), _utc(10, 15), _utc(10, 20)]
    assert len(set(p["event_id"] for p in outbox.raw())) == 8
    assert collection.tally.already_collected == 5


async def test_a_failed_fetch_is_dead_lettered_whole_and_the_poll_fails(tmp_path: Path) -> None:
    source, outbox = _opendatasoft(), FakeOutbox()
    body = b"<html><body><h1>503 Service Unavailable</h1></body></html>"
    source.failure = FetchFailed(
        "http_503", f"HTTP 503 Service Unavailable from {ODS_URL} (gave up after 5 attempts)", ODS_URL, body
    )
    collection = _collection(tmp_path, "opendatasoft-car-parks", source, outbox)

    assert await collection.poll() is False
    _balanced(collection)
    assert len(outbox.records) == 1
    topic, key, value = outbox.records[0]
    assert (topic, key) == (DEAD_LETTERS, b"mobility")
    letter = DeadLetter.model_validate_json(value)
    assert (letter.stage, letter.family) == ("collect", "mobility")
    assert (letter.origin.transport, letter.origin.topic) == ("http", ODS_URL)
    assert (letter.payload, letter.payload_encoding, letter.payload_size) == (
        body.decode(),
        "utf-8",
        len(body),
    )
    assert letter.errors[0].type == "http_503"
    assert "HTTP 503" in letter.reason and "opendatasoft-car-parks" in letter.reason
    assert collection.tally.failed_polls == {"http_503": 1}
    assert collection.tally.answers_dead_lettered == {"http_503": 1}
    assert collection.cursor.devices == {} and not collection.cursor.path.exists()


async def test_a_binary_body_is_kept_in_base64_and_a_stop_is_not_a_dead_letter(tmp_path: Path) -> None:
    source, outbox = _gbfs("2.3"), FakeOutbox()
    body = bytes(range(256))
    source.failure = FetchFailed(
        "too_large", "the answer exceeds the limit", f"{BASE}/gbfs-2.3/gbfs.json", body
    )
    collection = _collection(tmp_path, "gbfs-v2", source, outbox)
    assert await collection.poll() is False
    [letter] = outbox.letters()
    assert letter.payload_encoding == "base64" and letter.original_payload() == body

    source.failure = FetchFailed("stopped", "the collector stopped while waiting to retry", BASE)
    assert await collection.poll() is False
    assert len(outbox.records) == 1  # stopping is not the source's fault
    assert collection.tally.failed_polls == {"too_large": 1}


@pytest.mark.parametrize(
    ("recorded", "kind"),
    [
        ("failures/not_json.html", "not_json"),
        ("failures/truncated.json", "truncated"),
        ("failures/unexpected_shape.json", "unexpected_shape"),
    ],
)
async def test_an_answer_without_records_is_dead_lettered_whole(
    tmp_path: Path, recorded: str, kind: str
) -> None:
    source, outbox = _opendatasoft(page1=recorded), FakeOutbox()
    collection = _collection(tmp_path, "opendatasoft-car-parks", source, outbox)
    assert await collection.poll() is False
    _balanced(collection)
    [letter] = outbox.letters()
    assert letter.errors[0].type == kind and letter.stage == "collect"
    assert letter.original_payload() == _recorded(recorded)
    assert letter.origin.topic.startswith(ODS_URL)
    assert outbox.raw() == [] and len(source.asked) == 1  # the poll ended there
    assert collection.tally.failed_polls == {kind: 1}


async def test_a_not_modified_answer_sends_nothing(tmp_path: Path) -> None:
    source, outbox = _gbfs("2.3"), FakeOutbox()
    source.etags = True
    collection = _collection(tmp_path, "gbfs-v2", source, outbox)
    assert await collection.poll() is True
    feed = f"{BASE}/gbfs-2.3/station_status.json"
    assert set(collection.cursor.validators) == {feed}  # the discovery file is not conditional

    _restart(collection)
    assert await collection.poll() is True
    _balanced(collection)
    (discovery, no_validators), (status, validators) = source.asked[2:]
    assert discovery.what == "discovery" and no_validators is None
    assert status.url == feed and validators == collection.cursor.validators[feed]
    assert source.tally.not_modified == 1
    assert len(outbox.records) == 4  # nothing more
    assert collection.tally.rows == 4


async def test_the_validators_of_an_opendatasoft_source_stay_bounded(tmp_path: Path) -> None:
    published: list[dict[str, Any]] = []

    def records(request: Request) -> bytes:
        where = request.params.get("where", "")
        since = where.split("date'")[1].rstrip("'").replace("Z", "+00:00") if where else ""
        rows = [r for r in published if not since or r["date_maj"] >= since]
        return json.dumps({"total_count": len(rows), "results": rows[:5]}).encode()

    source, outbox = FakeSource(answer=records, etags=True), FakeOutbox()
    collection = _collection(tmp_path, "opendatasoft-car-parks", source, outbox)
    for minute in range(0, 60, 2):  # one poll per new record
        published.append(
            {
                "id_parking": "P-ENCAN",
                "places_disponibles": 200 + minute,
                "nb_places": 399,
                "date_maj": datetime(2026, 12, 6, 10, minute, tzinfo=UTC).isoformat(),
            }
        )
        assert await collection.poll() is True
        _balanced(collection)
    assert collection.tally.sent == 30
    assert len(collection.cursor.validators) <= 2, sorted(collection.cursor.validators)
