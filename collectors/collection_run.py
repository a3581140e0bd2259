"""Collecting one source: poll it, turn its records into events, send them, move its cursor.

Every record a source serves ends somewhere, and the tally shows where: sent to the raw topic
of its family (validation then accepts it or dead-letters it), already collected (the cursor
says so), or dead-lettered here with the mapping's reason (a renamed field, an unknown
device). An answer with no records we can read (HTML for JSON, a truncated body, a 500 after
its retries) is dead-lettered whole with why, and the poll ends; the next one asks again.
A row dead-lettered here is remembered (by a digest of its content) and not dead-lettered again
when a snapshot feed serves it unchanged at the next poll: ``already_refused``. So after every
poll ``rows == sent + already_collected + sum(rows_dead_lettered) + already_refused +
unlisted_devices`` (the rows of source devices a collector chose not to collect, counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlencode

from collectors.collector_file import CollectorFile
from collectors.polite_fetch import FetchFailed, FetchTally, PoliteFetcher
from collectors.source_cursor import SourceCursor
from collectors.source_pages import BadBody, Request, Row, first_request, parse
from schemas.catalogue import DEAD_LETTER_TOPIC, raw_topic
from schemas.dead_letter import FieldProblem, Origin
from schemas.dead_letters import dead_letter, fitting_json
from sensors.replay_mapping import SkipRow, SourceEvent, UnlistedDevice

log = logging.getLogger(__name__)
STAGE = "collect"

KafkaRecord = tuple[str, bytes, bytes]  # topic, key, value


class Outbox(Protocol):
    """Where records go; ``deliver`` returns once Kafka has acknowledged all, or raises."""

    async def deliver(self, records: Sequence[KafkaRecord]) -> None: ...


@dataclass
class CollectorTally:
    polls: int = 0
    failed_polls: Counter[str] = field(default_factory=Counter)
    rows: int = 0
    sent: int = 0
    already_collected: int = 0
    already_refused: int = 0
    unlisted_devices: int = 0
    rows_dead_lettered: Counter[str] = field(default_factory=Counter)
    answers_dead_lettered: Counter[str] = field(default_factory=Counter)

    def report(self, fetch: FetchTally) -> dict[str, Any]:
        return {
            "polls": self.polls,
            "failed_polls": dict(self.failed_polls),
            "requests": fetch.requests,
            "retries": fetch.retries,
            "not_modified": fetch.not_modified,
            "waited_s": round(fetch.waited_s, 3),
            "rows": self.rows,
            "sent": self.sent,
            "already_collected": self.already_collected,
            "already_refused": self.already_refused,
            "unlisted_devices": self.unlisted_devices,
            "rows_dead_lettered": dict(self.rows_dead_lettered),
            "answers_dead_lettered": dict(self.answers_dead_lettered),
        }


@dataclass
class Mapped:
    """A page's rows turned into events, or into dead letters with their reasons."""

    events: list[SourceEvent] = field(default_factory=list)
    letters: list[KafkaRecord] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    digests: list[str] = field(default_factory=list)
    already_refused: int = 0
    unlisted: int = 0
    rows: int = 0


def request_key(request: Request) -> str:
    """The cursor's name for a request's validators: its address with its parameters."""
    return f"{request.url}?{urlencode(sorted(request.params.items()))}" if request.params else request.url


class SourceCollection:
    """The polls of one collector file."""

    def __init__(
        self, collector: CollectorFile, cursor: SourceCursor, fetcher: PoliteFetcher, outbox: Outbox
    ) -> None:
        self.collector, self.cursor, self.fetcher, self.outbox = collector, cursor, fetcher, outbox
        self.tally = CollectorTally()

    @property
    def name(self) -> str:
        return self.collector.name

    def report(self) -> dict[str, Any]:
        return self.tally.report(self.fetcher.tally)

    async def poll(self) -> bool:
        """One poll, every page of it; False when it ended on a failure (counted, dead-lettered).
        A Kafka failure raises: nothing of the page is marked collected."""
        spec = self.collector.source
        self.tally.polls += 1
        since = self.cursor.since()
        request: Request | None = first_request(spec, since)
        asked: set[str] = set()
        while request is not None:
            key = request_key(request)
            asked.add(key)
            conditional = request.what != "discovery"
            try:
                answer = await self.fetcher.fetch(
                    request, self.cursor.validators.get(key) if conditional else None
                )
            except FetchFailed as failed:
                if failed.kind != "stopped":
                    await self._refuse_answer(failed.url, failed.body, failed.kind, failed.message)
                return False
            if answer.status == 304:
                return True  # nothing new since the validators were given
            try:
                page = parse(spec, request, answer.body, since)
            except BadBody as bad:
                await self._refuse_answer(answer.url, answer.body, bad.kind, bad.message)
                return False
            mapped = self._events(page.rows, answer.url)
            new, old = self.cursor.fresh(mapped.events)
            family = self.collector.mapping.family
            records = [(raw_topic(family), e.commune.encode(), _encode(e.payload())) for e in new]
            if records or mapped.letters:
                await self.outbox.deliver(records + mapped.letters)
            self.tally.rows += mapped.rows
            self.tally.sent += len(new)
            self.tally.already_collected += old
            self.tally.rows_dead_lettered.update(mapped.reasons)
            self.tally.already_refused += mapped.already_refused
            self.tally.unlisted_devices += mapped.unlisted
            self.cursor.advance(new)
            self.cursor.refuse(mapped.digests)
            if conditional:
                self.cursor.remember(key, answer.etag, answer.last_modified)
            if page.next is None:
                self.cursor.keep_validators(asked)
            if conditional or new or mapped.digests:  # a GBFS discovery file changes nothing
                self.cursor.save()
            request = page.next
        return True

    def _events(self, rows: Iterable[Row], url: str) -> Mapped:
        """The rows' events, and a dead letter for each row that holds none (counted by reason)
        unless the same row was dead-lettered before; with ``unlisted_devices = "skip"``, the rows
        of source devices the mapping does not list are counted, not dead-lettered."""
        out = Mapped()
        mapping = self.collector.mapping
        skip_unlisted = self.collector.source.unlisted_devices == "skip"
        for row in rows:
            out.rows += 1
            try:
                out.events.append(mapping.event(row))
            except SkipRow as skip:
                if skip_unlisted and isinstance(skip, UnlistedDevice):
                    out.unlisted += 1
                    continue
                raw = _encode(row)
                digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
                if digest in self.cursor.refused or digest in out.digests:
                    out.already_refused += 1
                    continue
                out.digests.append(digest)
                out.reasons[str(skip)] += 1
                out.letters.append(self._letter(url, raw, "unmappable_record", str(skip)))
        return out

    async def _refuse_answer(self, url: str, body: bytes, kind: str, message: str) -> None:
        log.warning(
            "collector %s: %s; the answer is dead-lettered, the next poll asks again", self.name, message
        )
        await self.outbox.deliver([self._letter(url, body, kind, message)])
        self.tally.failed_polls[kind] += 1
        self.tally.answers_dead_lettered[kind] += 1

    def _letter(self, url: str, raw: bytes, kind: str, message: str) -> KafkaRecord:
        family = self.collector.mapping.family
        letter = dead_letter(
            family=family,
            stage=STAGE,
            raw=raw,
            problems=[FieldProblem(path="", type=kind, message=f"{self.name}: {message}")],
            origin=Origin(transport="http", topic=url[:2048]),
            now=datetime.now(UTC),
        )
        return DEAD_LETTER_TOPIC, family.encode(), fitting_json(letter)


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


async def collect_forever(collection: SourceCollection, stop: asyncio.Event) -> None:
    """Poll every ``every_seconds`` until ``stop``; a failed poll is logged and the next one comes."""
    every = collection.collector.source.every_s
    while not stop.is_set():
        started = time.monotonic()
        try:
            done = await collection.poll()
        except Exception as exc:  # Kafka away, or a defect: this source waits, the others go on
            collection.tally.failed_polls[type(exc).__name__] += 1
            log.warning(
                "collector %s: poll failed (%s: %s); nothing of it is marked collected",
                collection.name,
                type(exc).__name__,
                exc,
            )
            done = False
        tally = collection.tally
        log.info(
            "collector %s: poll %d %s; rows %d, sent %d, already collected %d, dead-lettered %d",
            collection.name, tally.polls, "done" if done else "failed", tally.rows, tally.sent,
            tally.already_collected, sum(tally.rows_dead_lettered.values()),
        )  # fmt: skip
        wait = every - (time.monotonic() - started)
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
