"""Pull collectors against a local server of recorded answers, through the real stack.

`zerocarbon collect --once` runs as an operator would run it (a process of its own, the
collector principal, the worker validating what it sends), against tests/integration/
source_server.py, which plays an Opendatasoft portal, two GBFS systems (2.3 and 3.0), a JSON
API and a CSV file from the recorded answers of tests/recorded_sources/, and the failures an
attacker or a bad day brings. What reaches the valid topics and the dead letters is read back
and reconciled with what the server served: every record is accepted once or dead-lettered
with a reason; a collector killed in the middle of a poll and started again loses and repeats
nothing; a 429's Retry-After is waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from config.kafka_access import KafkaAccess
from schemas.catalogue import DEAD_LETTER_TOPIC, valid_topic
from schemas.dead_letter import DeadLetter
from streams.kafka_admin import topic_ends
from tests.collector_devices import reference_with_test_devices
from tests.integration.kafka_reading import read_payloads
from tests.integration.source_server import ODS_DATASET, RECORDED, RECORDED_DAY, RunningServer, SourceServer
from tests.integration.worker_runs import start_worker
from zerocarbon.processes import stop_child

TEMPLATES = RECORDED / "collectors"
FAMILIES = ("mobility", "environment")


@dataclass
class Collecting:
    """The module's set-up: the server, a registry with the test devices, a worker reading it."""

    server: SourceServer
    env: dict[str, str]
    folder: Path
    kafka: KafkaAccess

    def collector(self, template: str, name: str | None = None, **changes: str) -> Path:
        """A collector file from a template of tests/recorded_sources/collectors/, its URL on the
        server and, per ``changes``, lines replaced (``url``, ``producer_id``...)."""
        text = (
            (TEMPLATES / f"{template}.toml")
            .read_text(encoding="utf-8")
            .replace("{PORT}", str(self.server.port))
        )
        lines = text.splitlines()
        for key, value in changes.items():
            lines = [f'{key} = "{value}"' if line.split("=")[0].strip() == key else line for line in lines]
        path = self.folder / f"{name or template}.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"

    def collect(self, *files: Path, state: str = "state") -> tuple[int, dict[str, Any]]:
        """`zerocarbon collect FILES --once`: its exit code and its report."""
        report = self.folder / f"report-{time.monotonic_ns()}.json"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "zerocarbon.cli",
                "collect",
                *map(str, files),
                "--once",
                "--report",
                str(report),
            ],
            env={**os.environ, **self.env, "ZC_COLLECTOR_STATE_DIR": str(self.folder / state)},
            capture_output=True,
            timeout=180,
        )
        assert report.exists(), done.stderr.decode()[-3000:]
        return done.returncode, json.loads(report.read_text(encoding="utf-8"))

    def spawn(self, *files: Path, state: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "zerocarbon.cli", "collect", *map(str, files), "--once"],
            env={**os.environ, **self.env, "ZC_COLLECTOR_STATE_DIR": str(self.folder / state)},
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "spawned.log").open("ab"),
        )

    def ends(self) -> dict[TopicPartition, int]:
        return asyncio.run(topic_ends(self.kafka, [*map(valid_topic, FAMILIES), DEAD_LETTER_TOPIC]))

    def accepted(
        self, since: dict[TopicPartition, int], producers: set[str], expected: int, timeout: float = 30
    ) -> list[dict[str, Any]]:
        """The valid events of ``producers`` written after ``since`` (waits for ``expected``, at
        most ``timeout`` seconds)."""
        topics = [valid_topic(f) for f in FAMILIES]
        return _events_after(self.kafka, since, topics, expected, producers, timeout)

    def letters(
        self, since: dict[TopicPartition, int], where: str, expected: int, timeout: float = 20
    ) -> list[DeadLetter]:
        """The dead letters written after ``since`` whose origin holds ``where`` (a URL path)."""
        return _letters_after(self.kafka, since, expected, where, timeout)


def _after(since: dict[TopicPartition, int], topics: list[str]) -> dict[TopicPartition, int]:
    return {tp: offset for tp, offset in since.items() if tp.topic in topics}


def _events_after(
    kafka: KafkaAccess,
    since: dict[TopicPartition, int],
    topics: list[str],
    expected: int,
    producers: set[str],
    timeout: float,
) -> list[dict[str, Any]]:
    def keep(_topic: str, payload: bytes) -> bool:
        return any(p.encode() in payload for p in producers)

    def events(found: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
        out = []
        for _t, payload in found:
            value = json.loads(payload)
            out += value if isinstance(value, list) else [value]
        return [e for e in out if e.get("producer_id") in producers]

    start = _after(since, topics)
    found = asyncio.run(
        read_payloads(kafka, topics, keep, lambda f: len(events(f)) >= expected, timeout, start)
    )
    return events(found)


def _letters_after(
    kafka: KafkaAccess, since: dict[TopicPartition, int], expected: int, where: str, timeout: float
) -> list[DeadLetter]:
    def parsed(found: list[tuple[str, bytes]]) -> list[DeadLetter]:
        letters = [DeadLetter.model_validate_json(p) for _t, p in found]
        return [d for d in letters if d.stage == "collect" and where in d.origin.topic]

    topics = [DEAD_LETTER_TOPIC]
    start = _after(since, topics)
    found = asyncio.run(
        read_payloads(
            kafka, topics, lambda _t, _p: True, lambda f: len(parsed(f)) >= expected, timeout, start
        )
    )
    return parsed(found)


@pytest.fixture(scope="module")
def collecting(kafka_admin: KafkaAccess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collecting]:
    folder = tmp_path_factory.mktemp("collect")
    reference = reference_with_test_devices(folder / "reference")
    env = {"ZC_REFERENCE_DIR": str(reference)}
    # Yesterday: recent enough for every window, old enough for no clock's "future".
    shift = (date.today() - timedelta(days=1) - RECORDED_DAY).days
    worker = start_worker(folder / "worker.log", env)
    try:
        with RunningServer(SourceServer(shift_days=shift)) as server:
            yield Collecting(server, env, folder, kafka_admin)
    finally:
        stop_child(worker)


def test_every_kind_of_source_is_collected_once_and_accepted(collecting: Collecting) -> None:
    files = [
        collecting.collector(t)
        for t in ("gbfs-v2", "gbfs-v3", "opendatasoft-car-parks", "http-json-air-quality", "http-csv-weather")
    ]
    since = collecting.ends()
    code, report = collecting.collect(*files)
    assert code == 0, report
    served = {
        "gbfs-v2": 4,
        "gbfs-v3": 4,
        "opendatasoft-car-parks": 8,
        "http-json-air-quality": 6,
        "http-csv-weather": 6,
    }
    for name, rows in served.items():
        assert report[name]["rows"] == rows, (name, report[name])
        assert report[name]["sent"] == rows, (name, report[name])
        assert report[name]["failed_polls"] == {}, (name, report[name])
    producers = {
        "collect-test-gbfs2",
        "collect-test-gbfs3",
        "collect-test-ods",
        "collect-test-air",
        "collect-test-weather",
    }
    accepted = collecting.accepted(since, producers, sum(served.values()))
    by_producer = Counter(e["producer_id"] for e in accepted)
    assert by_producer == {
        "collect-test-gbfs2": 4,
        "collect-test-gbfs3": 4,
        "collect-test-ods": 8,
        "collect-test-air": 6,
        "collect-test-weather": 6,
    }
    assert len({e["event_id"] for e in accepted}) == len(accepted)  # each once
    # The values are the sources': a station's bikes, a car park's occupied places.
    lr003 = [e for e in accepted if e.get("device_id") == "bike-17300-0203"]
    assert [(e["available_bike_number"], e["free_slot_number"]) for e in lr003] == [(11, 6)]
    assert collecting.letters(since, f":{collecting.server.port}/", 1, timeout=5) == []

    # The same sources again: nothing new, so nothing sent. The documents and the GBFS feeds
    # answer 304 to their ETag; the portal is asked from the cursor on and its records, the
    # devices' newest, are known.
    since = collecting.ends()
    code, again = collecting.collect(*files)
    assert code == 0, again
    assert all(again[name]["sent"] == 0 for name in served), again
    for name in ("gbfs-v2", "gbfs-v3", "http-json-air-quality", "http-csv-weather"):
        assert again[name]["not_modified"] == 1, (name, again[name])
    parks = again["opendatasoft-car-parks"]
    assert parks["rows"] == parks["already_collected"] > 0, parks
    assert collecting.accepted(since, producers, 1, timeout=5) == []


def test_a_collector_killed_in_the_middle_of_a_poll_loses_and_repeats_nothing(collecting: Collecting) -> None:
    server = collecting.server
    parks = collecting.collector(
        "opendatasoft-car-parks", "parks-restart", producer_id="collect-test-restart"
    )
    stations = collecting.collector("gbfs-v2", "stations-restart", producer_id="collect-test-restart-gbfs")
    server.published = 6
    server.gbfs_snapshot = 1
    server._release.clear()
    server.hold_offset = 5  # the second page waits: the collector is killed while it waits
    since = collecting.ends()
    state = collecting.folder / "restart"
    collector = collecting.spawn(parks, stations, state="restart")
    cursor = state / "parks-restart.json"
    deadline = time.monotonic() + 60
    while (
        not (cursor.exists() and (state / "stations-restart.json").exists()) and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert cursor.exists(), "the first page was never marked collected"
    time.sleep(0.5)  # the collector now waits for the second page
    collector.send_signal(signal.SIGKILL)
    collector.wait(10)
    server.hold_offset = None
    server.release()
    # Meanwhile the portal published two more records and two stations reported again.
    server.published = 8
    server.gbfs_snapshot = 2
    code, report = collecting.collect(parks, stations, state="restart")
    assert code == 0, report
    accepted = collecting.accepted(since, {"collect-test-restart", "collect-test-restart-gbfs"}, 8 + 6)
    parks_events = [e for e in accepted if e["producer_id"] == "collect-test-restart"]
    assert len(parks_events) == 8 and len({e["event_id"] for e in parks_events}) == 8, parks_events
    station_events = Counter(
        e["device_id"] for e in accepted if e["producer_id"] == "collect-test-restart-gbfs"
    )
    # Snapshot 1's four stations once, and the two that reported again in snapshot 2.
    assert station_events == {
        "bike-17300-0201": 2,
        "bike-17300-0202": 1,
        "bike-17300-0203": 2,
        "bike-17300-0204": 1,
    }
    assert report["parks-restart"]["sent"] == 3  # the first page's 5 were in Kafka before the kill
    assert report["stations-restart"]["sent"] == 2 and report["stations-restart"]["already_collected"] == 2


def test_a_429_with_retry_after_is_waited_for(collecting: Collecting) -> None:
    air = collecting.collector("http-json-air-quality", "air-flaky", producer_id="collect-test-flaky")
    text = air.read_text(encoding="utf-8").replace("/http-json/", "/flaky/http-json/")
    air.write_text(text, encoding="utf-8")
    since = collecting.ends()
    code, report = collecting.collect(air, state="flaky")
    assert code == 0, report
    assert report["air-flaky"]["retries"] == 2 and report["air-flaky"]["sent"] == 6, report
    asked = collecting.server.requests_to("/flaky/http-json/air_quality.json")
    assert [s.status for s in asked] == [429, 429, 200]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(asked)]
    assert all(gap >= 2.0 for gap in gaps), gaps  # Retry-After: 2, whatever the backoff would be
    assert len(collecting.accepted(since, {"collect-test-flaky"}, 6)) == 6


def test_bad_answers_are_dead_lettered_with_their_reason_and_the_others_go_on(collecting: Collecting) -> None:
    good = collecting.collector("http-json-air-quality", "air-good", producer_id="collect-test-good")
    broken = {
        "html": ("/broken/not_json.html", "not_json"),
        "truncated": ("/broken/truncated.json", "truncated"),
        "shape": ("/broken/unexpected_shape.json", "unexpected_shape"),
        "status-500": ("/broken/500", "http_500"),
    }
    files = [good]
    for name, (path, _kind) in broken.items():
        bad = collecting.collector(
            "opendatasoft-car-parks", f"bad-{name}", producer_id=f"collect-test-{name}"
        )
        bad.write_text(
            bad.read_text(encoding="utf-8")
            .replace(ODS_DATASET, path)
            .replace("page_size = 5", "page_size = 5\nmax_attempts = 2"),
            encoding="utf-8",
        )
        files.append(bad)
    # The car parks' records with a field renamed, as one JSON document.
    renamed = collecting.collector(
        "opendatasoft-car-parks", "bad-renamed", producer_id="collect-test-renamed"
    )
    text = renamed.read_text(encoding="utf-8").replace(ODS_DATASET, "/broken/renamed_field.json")
    text = text.replace('kind = "opendatasoft"', 'kind = "http-json"\nrecords = "results"')
    text = "\n".join(line for line in text.splitlines() if not line.startswith(("cursor_field", "page_size")))
    renamed.write_text(text + "\n", encoding="utf-8")
    files.append(renamed)
    since = collecting.ends()
    code, report = collecting.collect(*files, state="broken")
    assert code == 1, report  # --once with failed polls: a cron job sees it
    assert report["air-good"]["sent"] == 6 and report["air-good"]["failed_polls"] == {}
    assert len(collecting.accepted(since, {"collect-test-good"}, 6)) == 6
    for name, (path, kind) in broken.items():
        assert report[f"bad-{name}"]["failed_polls"] == {kind: 1}, report[f"bad-{name}"]
        (letter,) = collecting.letters(since, path, 1)
        assert letter.errors[0].type == kind and letter.family == "mobility"
        served = (
            collecting.server.body("failures/" + path.removeprefix("/broken/"))
            if name != "status-500"
            else b"<html><body>Internal Server Error</body></html>"
        )
        assert letter.original_payload() == served  # the answer, verbatim
    assert [s.status for s in collecting.server.requests_to("/broken/500")] == [500, 500]  # max_attempts
    # Each record of the page with a renamed field: dead-lettered with what is missing.
    rows = collecting.letters(since, "/broken/renamed_field.json", 5)
    assert len(rows) == 5, rows
    assert {r.reason for r in rows} == {"bad-renamed: no column 'places_disponibles'"}
    assert report["bad-renamed"]["rows_dead_lettered"] == {"no column 'places_disponibles'": 5}
    assert sorted(json.loads(r.original_payload())["available"] for r in rows) == sorted(
        r["available"] for r in json.loads(collecting.server.body("failures/renamed_field.json"))["results"]
    )  # each record kept whole


def test_collect_runs_until_sigterm_and_serves_its_metrics(collecting: Collecting) -> None:
    air = collecting.collector("http-json-air-quality", "air-metrics", producer_id="collect-test-metrics")
    with socket.socket() as probe:  # a free port for /metrics
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        **collecting.env,
        "ZC_COLLECTOR_STATE_DIR": str(collecting.folder / "metrics"),
        "ZC_COLLECTOR_METRICS_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "zerocarbon.cli", "collect", str(air)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=(collecting.folder / "metrics.log").open("ab"),
    )
    try:
        text = ""
        deadline = time.monotonic() + 60
        while (
            'zc_collector_sent_total{collector="air-metrics"} 6.0' not in text and time.monotonic() < deadline
        ):
            time.sleep(0.2)
            url = f"http://127.0.0.1:{port}/metrics"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as answer:
                text = answer.read().decode()
        assert 'zc_collector_sent_total{collector="air-metrics"} 6.0' in text, text[-2000:]
        assert 'zc_collector_polls_total{collector="air-metrics"} 1.0' in text  # every 60 s: one so far
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert json.loads(out)["air-metrics"]["sent"] == 6
