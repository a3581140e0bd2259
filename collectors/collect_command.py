"""`zerocarbon collect [COLLECTOR ...]`: poll the sources that publish on HTTP APIs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config.kafka_access import KafkaAccess
from config.prometheus_metrics import MetricsEndpoint

if TYPE_CHECKING:  # the HTTP and Kafka clients come with them: imported when collecting
    from collectors.collection_run import SourceCollection
    from collectors.collector_file import CollectorFile
    from collectors.source_cursor import SourceCursor

log = logging.getLogger(__name__)
HELP = "poll open-data and partner APIs (Opendatasoft, GBFS, JSON, CSV) into the raw topics"
DESCRIPTION = """\
Run the collectors that COLLECTOR names (a collector file, or the name of a shipped one in
collectors/sources/; default: every shipped one). A collector file (TOML, docs/collectors.md)
says where a source publishes (kind: opendatasoft, gbfs, http-json or http-csv; its url,
parameters and schedule) and maps its records to our event contracts with the keys of a
replay mapping. What is collected goes to zc.raw.<family> as the collector principal and
through validation like a partner's events; what cannot be used (an unknown device, a
renamed field, HTML for JSON, a 500 after its retries) goes to zc.deadletter with why.

Each source's cursor (what was collected, the validators for conditional requests) is kept
in ZC_COLLECTOR_STATE_DIR (default <stack_home>/collectors), written only after Kafka has
acknowledged, so a restart neither loses nor repeats. Requests are paced (one per
min_interval_seconds), time out, are retried with exponential backoff and jitter on 429 and
5xx, and honour Retry-After.

Prints a JSON report per collector (rows served, sent, already collected, dead-lettered and
why) when it stops: after one poll each with --once, else on SIGTERM or Ctrl-C.

Examples:
  zerocarbon collect --list
  zerocarbon collect --check my-source.toml
  zerocarbon collect yelo-bike-stations --once
  zerocarbon collect                     # every shipped collector, until stopped
"""


@dataclass(frozen=True)
class CollectConfig:
    kafka: KafkaAccess | None  # None: --list and --check reach no broker
    reference_dir: Path
    state_dir: Path
    metrics: MetricsEndpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "collectors", nargs="*", metavar="COLLECTOR", help="a collector file or a shipped name"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="poll each source once, print the report, exit")
    mode.add_argument(
        "--list", action="store_true", help="list the collectors (kind, url, schedule, licence)"
    )
    mode.add_argument("--check", action="store_true", help="check the collector files, collect nothing")
    parser.add_argument("--report", type=Path, help="also write the JSON report to this file")


def run(args: argparse.Namespace, config: CollectConfig) -> int:
    """Run `zerocarbon collect` with parsed ``args``; exit code (2: a file or cursor is wrong)."""
    from collectors.collector_file import load_collector, resolve_collectors
    from collectors.source_cursor import load_cursor
    from reference.loader import load_reference

    try:
        registry = load_reference(config.reference_dir).devices
        collectors = [load_collector(path, registry) for path in resolve_collectors(args.collectors)]
        if not collectors:
            raise ValueError("no collector file to run")
        cursors = {c.name: load_cursor(config.state_dir / f"{c.name}.json") for c in collectors}
    except (ValueError, OSError) as exc:
        print(f"zerocarbon collect: {exc}", file=sys.stderr)
        return 2
    if args.list or args.check:
        for c in collectors:
            s = c.source
            licence = s.licence or "not stated"
            print(f"{c.name}: {s.kind} {s.url} every {s.every_s:g} s -> zc.raw.{c.mapping.family}; {licence}")
        return 0
    assert config.kafka is not None  # collect_config gives one to every mode that collects
    report = asyncio.run(_collect(collectors, cursors, config.kafka, None if args.once else config.metrics))
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    if args.report:
        args.report.write_text(text + "\n", encoding="utf-8")
    failed = any(r["failed_polls"] for r in report.values())
    return 1 if args.once and failed else 0


class KafkaOutbox:
    """Records to Kafka, acknowledged by every in-sync replica (acks=all), in order per key."""

    def __init__(self, kafka: KafkaAccess) -> None:
        from aiokafka import AIOKafkaProducer

        self.producer = AIOKafkaProducer(
            **kafka.client_options(), acks="all", enable_idempotence=True, linger_ms=5
        )

    async def deliver(self, records: Sequence[tuple[str, bytes, bytes]]) -> None:
        futures = [await self.producer.send(topic, value, key=key) for topic, key, value in records]
        for outcome in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome


async def _collect(
    collectors: list[CollectorFile],
    cursors: dict[str, SourceCursor],
    kafka: KafkaAccess,
    metrics: MetricsEndpoint | None,
) -> dict[str, Any]:
    """Poll until stopped, serving /metrics at ``metrics``; with ``metrics`` None (--once), each
    collector once."""
    import aiohttp

    from collectors.collection_run import SourceCollection, collect_forever
    from collectors.collector_file import CollectorFileError, resolved_params
    from collectors.collector_metrics import COLLECTOR_METRICS, snapshot
    from collectors.polite_fetch import PoliteFetcher
    from config.prometheus_metrics import metrics_registry, metrics_server
    from schemas.catalogue import DEAD_LETTER_TOPIC, raw_topic
    from streams.kafka_admin import require_topics

    await require_topics(kafka, {DEAD_LETTER_TOPIC, *(raw_topic(c.mapping.family) for c in collectors)})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def stoppable_sleep(seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        return stop.is_set()

    outbox = KafkaOutbox(kafka)
    await outbox.producer.start()
    rng = random.Random()
    try:
        async with aiohttp.ClientSession() as session:
            runs: list[SourceCollection] = []
            not_started: dict[str, Any] = {}
            for c in collectors:
                try:
                    spec = replace(c.source, params=resolved_params(c.source, os.environ))
                except CollectorFileError as exc:
                    log.warning("collector %s not started: %s", c.name, exc)
                    not_started[c.name] = {"not_started": str(exc), "failed_polls": {"not_started": 1}}
                    continue
                fetcher = PoliteFetcher(session, spec, stoppable_sleep, rng)
                runs.append(SourceCollection(replace(c, source=spec), cursors[c.name], fetcher, outbox))
            if metrics is None:
                await asyncio.gather(*(_poll_once(r) for r in runs))
            else:
                registry = metrics_registry(COLLECTOR_METRICS, lambda: snapshot(runs))
                async with metrics_server(registry, metrics, lambda: {"collecting": bool(runs)}) as port:
                    names = ", ".join(r.name for r in runs)
                    log.info("collecting %s (metrics on port %d); SIGTERM or Ctrl-C stops", names, port)
                    await asyncio.gather(*(collect_forever(r, stop) for r in runs))
            return {**not_started, **{r.name: r.report() for r in runs}}
    finally:
        await outbox.producer.stop()


async def _poll_once(collection: SourceCollection) -> None:
    try:
        await collection.poll()
    except Exception as exc:  # Kafka away: reported, nothing marked collected
        collection.tally.failed_polls[type(exc).__name__] += 1
        log.warning("collector %s: poll failed: %s: %s", collection.name, type(exc).__name__, exc)
