"""`zerocarbon replay FILE --mapping MAPPING`: a data file's rows as events, over MQTT or to Kafka."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from config.kafka_access import KafkaAccess
from schemas.mqtt_principals import MqttLogin
from sensors.device_side_config import DeviceSideConfig, add_login_arguments, publishing_login

HELP = "replay the rows of a CSV or JSON file as events (MQTT or Kafka), at any pace"
DESCRIPTION = """\
Turn the rows of a CSV or JSON file into events of our contracts with a mapping file (TOML:
which columns hold the device, the time and its time zone, the values and their units; see
docs/devices.md), then send them in time order at the original pace (--speed 1), faster
(--speed 60: an hour a minute) or as fast as possible (--fast), over MQTT like devices or
straight to Kafka (zc.raw.<family>) like partners. Prints a JSON report: rows read, events,
rows skipped and why, messages sent and acknowledged. Over MQTT it publishes as the gateway
principal (docs/security.md) unless --username and --password-file say otherwise.

Times are moved by whole weeks so that the file's last row falls within the past week
(--shift weeks, the default): weekdays and hours keep their meaning, and validation, which
refuses readings older than 400 days, accepts them. --shift none keeps the original times.

Event ids come from the producer, the device and the row's original time: replaying the same
rows again gives duplicates that validation drops. --id-suffix RUN makes them new events.

Shipped mappings (--mapping NAME): household-power-sceaux, air-quality-openaq,
larochelle-parking; each names its excerpt of a public data set, shipped in
sensors/replay_data/, so FILE may be omitted.

Examples:
  zerocarbon replay --mapping larochelle-parking --fast
  zerocarbon replay data.csv --mapping my-meters.toml --speed 3600 --to kafka
"""

WEEK_S = 7 * 86400


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `zerocarbon replay`."""
    parser.add_argument(
        "file", nargs="?", type=Path, help="CSV, JSON array or JSON lines (default: the mapping's file)"
    )
    parser.add_argument(
        "--mapping", required=True, help="a mapping file (TOML), or the name of one in sensors/mappings/"
    )
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed", type=float, default=1.0, help="file seconds per real second (default 1: original pace)"
    )
    pace.add_argument("--fast", action="store_true", help="as fast as possible")
    parser.add_argument("--rate", type=float, help="at most this many events per second")
    parser.add_argument("--limit", type=int, help="only the first N rows of the file")
    parser.add_argument(
        "--shift",
        default="weeks",
        help="'weeks' (default): move times by whole weeks to end in the past week; 'none': keep "
        "them; or an ISO 8601 time with offset for the first event",
    )
    parser.add_argument(
        "--id-suffix",
        default="",
        help="append this to every event id: the replay's events are new ones, not duplicates of an "
        "earlier replay of the same rows (a test run, a repeated demo); default: none",
    )
    parser.add_argument("--to", choices=["mqtt", "kafka"], default="mqtt", help="default mqtt")
    parser.add_argument("--topic-root", default="zc", help="MQTT topic root (default zc)")
    parser.add_argument("--publisher", choices=["auto", "paho", "socket"], default="auto", help="MQTT client")
    add_login_arguments(parser)
    parser.add_argument(
        "--dry-run", action="store_true", help="print the payloads (JSON lines) instead of sending them"
    )


def shift_seconds(spec: str, first: float, last: float, now: float) -> float:
    """How far to move the file's times: ``weeks``, ``none`` or an ISO start for the first event."""
    if spec == "none":
        return 0.0
    if spec == "weeks":
        return ((now - last) // WEEK_S) * WEEK_S
    from datetime import datetime

    start = datetime.fromisoformat(spec)
    if start.tzinfo is None:
        raise ValueError(f"--shift {spec!r} has no UTC offset (add Z or +01:00)")
    return start.timestamp() - first


def resolve_mapping(name: str) -> Path:
    """A path as given, else a shipped mapping by name."""
    from sensors.replay_mapping import MAPPINGS_DIR

    path = Path(name)
    if path.exists():
        return path
    shipped = MAPPINGS_DIR / f"{name.removesuffix('.toml')}.toml"
    if shipped.exists():
        return shipped
    names = sorted(p.stem for p in MAPPINGS_DIR.glob("*.toml"))
    raise ValueError(f"no mapping file {name!r}, and no shipped mapping of that name (shipped: {names})")


def run(args: argparse.Namespace, config: DeviceSideConfig) -> int:
    """Run `zerocarbon replay` with parsed ``args``; print the report; exit code."""
    from reference.loader import load_reference
    from sensors.replay_mapping import convert_rows, load_mapping
    from sensors.row_files import file_format, read_rows

    reference = load_reference(config.reference_dir)
    try:
        mapping = load_mapping(resolve_mapping(args.mapping), reference.devices)
        path = args.file or mapping.default_file
        if path is None:
            raise ValueError("give FILE: the mapping names no default file")
        rows = read_rows(path, file_format(path, mapping.file_format), args.limit)
        conversion = convert_rows(mapping, rows)
        if not conversion.events:
            raise ValueError(f"{path}: no row gave an event (skipped: {dict(conversion.skipped)})")
        events = conversion.events
        shift = shift_seconds(args.shift, events[0].time, events[-1].time, time.time())
        login = (
            publishing_login(config, args.username, args.password_file)
            if args.to == "mqtt" and not args.dry_run
            else None
        )
    except (ValueError, OSError) as exc:
        print(f"zerocarbon replay: {exc}", file=sys.stderr)
        return 2
    messages = [
        (e.time + shift, e.family, e.device_id, e.commune, _encode(e.payload(shift, args.id_suffix)))
        for e in events
    ]
    report: dict[str, Any] = {
        "file": str(path),
        "mapping": mapping.name,
        "rows": conversion.rows,
        "events": len(events),
        "skipped": dict(conversion.skipped),
        "shift_days": round(shift / 86400, 3),
    }
    if args.dry_run:
        try:
            for message in messages:
                sys.stdout.write(message[4].decode() + "\n")
            sys.stdout.flush()  # a reader that left shows here, not in a flush at exit
        except BrokenPipeError:
            return _reader_left()
        print(json.dumps(report), file=sys.stderr)
        return 0
    speed = None if args.fast else args.speed
    started = time.monotonic()
    if args.to == "kafka":
        sent, acknowledged = asyncio.run(_to_kafka(config.kafka, messages, speed, args.rate))
    else:
        assert login is not None
        sent, acknowledged = _to_mqtt(args, config, login, messages, speed)
    report.update(
        sent=sent, acknowledged=acknowledged, to=args.to, seconds=round(time.monotonic() - started, 3)
    )
    print(json.dumps(report, indent=2))
    return 0 if acknowledged == sent == len(events) else 1


def _reader_left() -> int:
    """Stop quietly, as a Unix filter does, when the reader of stdout has gone (``| head``)."""
    # Python would flush stdout again at exit and print another BrokenPipeError: point
    # stdout at /dev/null first (the remedy in the documentation of the signal module).
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 128 + signal.SIGPIPE  # what a shell reports for a filter killed by SIGPIPE


Message = tuple[float, str, str, str, bytes]  # time, family, device id, commune, payload


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _batches(messages: Sequence[Message], speed: float | None, rate: float | None) -> Iterable[list[Message]]:
    from sensors.pacing import paced

    return paced(messages, lambda m: m[0], speed=speed, rate=rate)


def _to_mqtt(
    args: argparse.Namespace,
    config: DeviceSideConfig,
    login: MqttLogin,
    messages: Sequence[Message],
    speed: float | None,
) -> tuple[int, int]:
    from sensors.mqtt_publishers import MqttTarget, open_publisher

    target = MqttTarget(
        config.mqtt_host, config.mqtt_port, login.username, login.password, ca_file=config.mqtt_ca_file
    )
    # An unpaced replay is a load: let auto pick the fast publisher.
    publisher = open_publisher(args.publisher, args.rate if speed is None else 1.0, target)
    try:
        for batch in _batches(messages, speed, args.rate):
            publisher.publish_many((f"{args.topic_root}/{m[3]}/{m[1]}/{m[2]}", m[4]) for m in batch)
        return publisher.sent, publisher.wait_acknowledged()
    finally:
        publisher.close()


async def _to_kafka(
    kafka: KafkaAccess, messages: Sequence[Message], speed: float | None, rate: float | None
) -> tuple[int, int]:
    from aiokafka import AIOKafkaProducer

    from schemas.catalogue import raw_topic

    producer = AIOKafkaProducer(**kafka.client_options(), acks="all", linger_ms=5)
    await producer.start()
    sent = acknowledged = 0
    try:
        for batch in _batches(messages, speed, rate):
            futures = [await producer.send(raw_topic(m[1]), m[4], key=m[3].encode()) for m in batch]
            sent += len(futures)
            results = await asyncio.gather(*futures, return_exceptions=True)
            acknowledged += sum(1 for r in results if not isinstance(r, BaseException))
    finally:
        await producer.stop()
    return sent, acknowledged
