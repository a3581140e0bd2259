"""`zerocarbon agreements check | list | grant | revoke | audit | rotate-key`.

``check`` reads agreement files and needs nothing else. ``grant`` and ``revoke`` write to
``zc.agreements`` (and the audit) as the Kafka admin, and ``grant`` makes the party's topic;
the sharing stage follows the topic and applies a change to the next record it reads.
``list`` and ``audit`` read the topics back: Kafka is the only record of what is in force
and of what each party was sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import AGREEMENT_TOPIC, SHARING_AUDIT_TOPIC, share_topic
from schemas.local_calendar import ZoneCalendar
from sharing.agreement_records import (
    AgreementState,
    audit_change,
    grant_record,
    read_agreement_record,
    revoke_record,
)
from sharing.agreement_terms import AGREEMENT_PREFIX, PUBLIC_PARTY
from sharing.agreements import Agreement, AgreementError, load_agreement_file
from sharing.key_history import key_history
from sharing.open_data import open_data_files
from sharing.pseudonyms import KeyFileError, first_key, rotate_keys
from sharing.sharing_engine import AGREEMENT_HEADER
from stack.errors import StackError
from streams.kafka_admin import TopicSpec, ensure_topics, topic_ends

HELP = "check, grant, revoke and list data-use agreements; print what a party was sent"
DESCRIPTION = """\
Data-use agreements are ODRL 2.2 documents of the platform's profile (docs/sharing.md); the
sharing stage (`zerocarbon share`) enforces those in force on every record.

  check FILE...     validate agreement files and print their terms (needs no broker)
  grant FILE        validate, make the party's topic zc.share.<party>, put it in force
  revoke NAME       stop an agreement: its party receives nothing more under it (within seconds)
  list              every agreement granted or revoked, its version and whether it is in force
  audit PARTY       what the party was sent, per agreement and version, and every change
  open-data DAY     the public agreements' files of a local day (ZC_TIME_ZONE): a CSV of the cells released
                    on zc.share.public whose window starts that day, and its DCAT-AP record
  rotate-key        a new key for household pseudonyms (the old ones stay readable; new
                    releases use the new key, so the same meter gets a new pseudonym); with
                    the key file lost, a first key above every version the audit names

grant, revoke, list and audit need the Kafka admin's credential (the local stack's, or
ZC_KAFKA_ADMIN_USERNAME and ZC_KAFKA_ADMIN_PASSWORD). A party reads its topic with a
principal of its own: `zerocarbon principals add party NAME`.
"""
PARTY_TOPIC_RETENTION_MS = 7 * 86_400_000
"""A party's topic keeps a week: what it must keep longer is its copy, under its agreement's terms."""


@dataclass(frozen=True, slots=True)
class AgreementsConfig:
    admin: KafkaAccess | None
    indicators: frozenset[str]
    key_file: Path
    partitions: int
    replication: int = 1  # copies of a party's topic, as of the catalogue's
    time_zone: str = "UTC"  # whose local dates open-data's DAY names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="validate agreement files, print their terms")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    grant = actions.add_parser("grant", help="put an agreement in force (its party's topic made)")
    grant.add_argument("file", type=Path, metavar="FILE")
    revoke = actions.add_parser("revoke", help="stop an agreement")
    revoke.add_argument(
        "name", metavar="NAME", help="the agreement's uid, or its name after urn:zerocarbon:agreement:"
    )
    revoke.add_argument("--reason", default="revoked by the platform", help="kept in the audit")
    listing = actions.add_parser("list", help="the agreements granted and revoked")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    audit = actions.add_parser("audit", help="what a party was sent")
    audit.add_argument("party", metavar="PARTY")
    audit.add_argument("--json", action="store_true", help="print the audit records as JSON lines")
    actions.add_parser("rotate-key", help="a new key for household pseudonyms")
    open_data = actions.add_parser("open-data", help="a day's open-data files (CSV, DCAT-AP)")
    open_data.add_argument(
        "day", type=date.fromisoformat, metavar="DAY", help="YYYY-MM-DD (a local date, ZC_TIME_ZONE)"
    )
    open_data.add_argument(
        "--out", type=Path, default=Path("open-data"), help="folder (default: ./open-data)"
    )


def from_settings(args: argparse.Namespace, settings: Settings) -> int:
    from zerocarbon.sharing_configs import agreements_config

    return run(args, agreements_config(settings))


def run(args: argparse.Namespace, config: AgreementsConfig) -> int:
    """Exit code: 0, 1 for broker trouble, 2 for an agreement or input refused."""
    if args.action == "check":
        return _check(args.files, config)
    if args.action == "rotate-key":
        return _rotate_key(config)
    actions: dict[
        str, Callable[[argparse.Namespace, AgreementsConfig, KafkaAccess], Coroutine[Any, Any, int]]
    ] = {
        "grant": _grant,
        "revoke": _revoke,
        "list": _list,
        "audit": _audit,
        "open-data": _open_data,
    }
    try:
        if config.admin is None:
            raise StackError(
                "no Kafka admin credential: on the local stack run `zerocarbon stack up`; for another "
                "cluster set ZC_KAFKA_ADMIN_USERNAME and ZC_KAFKA_ADMIN_PASSWORD"
            )
        return asyncio.run(actions[args.action](args, config, config.admin))
    except (AgreementError, ValueError) as exc:
        print(f"zerocarbon agreements {args.action}: {exc}", file=sys.stderr)
        return 2
    except (StackError, OSError) as exc:
        print(f"zerocarbon agreements {args.action}: {exc}", file=sys.stderr)
        return 1


def _rotate_key(config: AgreementsConfig) -> int:
    """A new current key; for a key file lost, a first key above every version used."""
    try:
        if config.key_file.exists():
            keys = rotate_keys(config.key_file)
        else:
            if config.admin is None:
                raise StackError(
                    f"{config.key_file} is missing, and without the Kafka admin's credential the key "
                    "versions used before cannot be read (ZC_KAFKA_ADMIN_USERNAME, ZC_KAFKA_ADMIN_PASSWORD)"
                )
            history = asyncio.run(key_history(config.admin))
            keys = first_key(config.key_file, history.version_after_loss())
            if history.shared_before:
                print(f"{config.key_file} was missing: a new key, version {keys.current}, above every "
                      "version used; pseudonyms made under the lost key match none made now")  # fmt: skip
    except (KeyFileError, StackError, OSError, KafkaError) as exc:
        print(f"zerocarbon agreements rotate-key: {exc!r}" if isinstance(exc, KafkaError) else
              f"zerocarbon agreements rotate-key: {exc}", file=sys.stderr)  # fmt: skip
        return 1
    print(f"household pseudonyms now use key version {keys.current} ({config.key_file}); "
          "the running sharing stage takes it within a second")  # fmt: skip
    return 0


def _check(files: list[Path], config: AgreementsConfig) -> int:
    refused = 0
    for path in files:
        try:
            agreement = load_agreement_file(path, config.indicators)
        except AgreementError as exc:
            print(f"{path}: REFUSED: {exc}")
            refused += 1
            continue
        print(f"{path}: ok")
        for line in describe(agreement):
            print(f"  {line}")
    return 2 if refused else 0


def describe(agreement: Agreement) -> list[str]:
    """An agreement's enforced terms, one per line, as `check` and `grant` print them."""
    targets = agreement.targets
    named = [*sorted(targets.families), *sorted(targets.kinds), *sorted(targets.indicators)]
    until = agreement.valid_until.isoformat() if agreement.valid_until else "no end"
    lines = [
        f"agreement {agreement.uid}, version {agreement.short_version}",
        f"party {agreement.party} (topic {share_topic(agreement.party)}), granted by {agreement.assigner}",
        f"{agreement.detail.value} of {', '.join(named)}",
        f"purpose {', '.join(p.value for p in agreement.purposes)}",
        f"in force from {agreement.valid_from.isoformat()} to {until}",
        f"retention of the party's copy: {_days(agreement.retention)}",
        f"attribution: {agreement.attribution}",
    ]
    if agreement.minimum_window:
        lines.append(f"windows of {agreement.minimum_window} and longer")
    if agreement.producers is not None:
        lines.append(f"producers: {', '.join(sorted(agreement.producers))}")
    if agreement.omit_fields:
        lines.append(f"fields omitted: {', '.join(sorted(agreement.omit_fields))}")
    if agreement.pseudonymise_fields:
        lines.append(f"fields pseudonymised: {', '.join(sorted(agreement.pseudonymise_fields))}")
    lines.append("household meters (residential) pseudonymised whatever the terms")
    return lines


async def _send(admin: KafkaAccess, records: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(**admin.client_options(), acks="all")
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def _grant(args: argparse.Namespace, config: AgreementsConfig, admin: KafkaAccess) -> int:
    agreement = load_agreement_file(args.file, config.indicators)
    topic = share_topic(agreement.party)
    spec = TopicSpec(topic, config.partitions, {"retention.ms": str(PARTY_TOPIC_RETENTION_MS)})
    await ensure_topics(admin, [spec], config.replication)
    now = datetime.now(UTC)
    await _send(
        admin,
        [
            (AGREEMENT_TOPIC, agreement.uid.encode(), grant_record(agreement, now)),
            (
                SHARING_AUDIT_TOPIC,
                agreement.party.encode(),
                audit_change("grant", agreement.party, agreement.uid, agreement.version, now),
            ),
        ],
    )
    print("granted:")
    for line in describe(agreement):
        print(f"  {line}")
    return 0


async def _revoke(args: argparse.Namespace, config: AgreementsConfig, admin: KafkaAccess) -> int:
    uid = args.name if args.name.startswith(AGREEMENT_PREFIX) else AGREEMENT_PREFIX + args.name
    states = await agreement_states(admin, config.indicators)
    state = states.get(uid)
    if state is None:
        raise ValueError(f"no agreement {uid} was ever granted; `zerocarbon agreements list` shows them")
    if state.agreement is None and state.revoked_reason is not None:
        print(f"{uid} was already revoked ({state.at}: {state.revoked_reason})")
        return 0
    party = state.agreement.party if state.agreement else "(unknown)"
    version = state.agreement.version if state.agreement else None
    now = datetime.now(UTC)
    await _send(
        admin,
        [
            (AGREEMENT_TOPIC, uid.encode(), revoke_record(uid, args.reason, now)),
            (
                SHARING_AUDIT_TOPIC,
                party.encode(),
                audit_change("revoke", party, uid, version, now, args.reason),
            ),
        ],
    )
    print(f"revoked {uid} (party {party}): the sharing stage stops its releases at its next record")
    return 0


async def read_whole(admin: KafkaAccess, topic: str) -> list[Any]:
    """Every record of ``topic``, all partitions, from their beginning to their end now."""
    ends = await topic_ends(admin, [topic])  # every partition of it, by its metadata
    partitions = sorted(ends)
    consumer = AIOKafkaConsumer(**admin.client_options(), enable_auto_commit=False)
    await consumer.start()
    out: list[Any] = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=5000)
            if not batch:
                raise StackError(f"{topic}: nothing read for 5 s before its end ({ends})")
            for tp, records in batch.items():
                out += [r for r in records if r.offset < ends[tp]]
    finally:
        await consumer.stop()
    return out


async def agreement_states(admin: KafkaAccess, indicators: frozenset[str]) -> dict[str, AgreementState]:
    """Each agreement's latest record."""
    states: dict[str, AgreementState] = {}
    for record in await read_whole(admin, AGREEMENT_TOPIC):
        state = read_agreement_record(record.key, record.value, indicators)
        states[state.uid] = state
    return states


def _status(state: AgreementState, now: datetime) -> str:
    if state.agreement is None:
        return f"refused: {state.refused}" if state.refused else f"revoked {state.at}"
    if state.agreement.active(now):
        return "in force"
    return "not yet in force" if now < state.agreement.valid_from else "expired"


async def _list(args: argparse.Namespace, config: AgreementsConfig, admin: KafkaAccess) -> int:
    now = datetime.now(UTC)
    states = await agreement_states(admin, config.indicators)
    rows = [
        {
            "agreement": uid,
            "party": state.agreement.party if state.agreement else None,
            "version": state.agreement.version if state.agreement else None,
            "detail": state.agreement.detail.value if state.agreement else None,
            "status": _status(state, now),
        }
        for uid, state in sorted(states.items())
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no agreement was ever granted")
    for row in rows:
        version = (row["version"] or "")[:16]
        print(
            f"{row['agreement']:<55} {row['party'] or '-':<22} {version:<17} "
            f"{row['detail'] or '-':<21} {row['status']}"
        )
    return 0


async def _audit(args: argparse.Namespace, config: AgreementsConfig, admin: KafkaAccess) -> int:
    records = [
        json.loads(r.value)
        for r in await read_whole(admin, SHARING_AUDIT_TOPIC)
        if r.key == args.party.encode()
    ]
    if args.json:
        for record in records:
            print(json.dumps(record, ensure_ascii=False))
        return 0
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for record in records:
        if record.get("event") == "release":
            total = totals[(record["agreement"], str(record["version"])[:16])]
            total[0] += record["records"]
            total[1] += record["items"]
            total[2] += record["secret"]
        else:
            version = str(record.get("version") or "")[:16]
            reason = f": {record['reason']}" if record.get("reason") else ""
            print(f"{record['at']}  {record['event']:<7} {record['agreement']} {version}{reason}")
    if not records:
        print(f"nothing was ever granted to or sent to {args.party}")
    for (uid, version), (count, items, secret) in sorted(totals.items()):
        print(f"sent under {uid} version {version}: {count} records, {items} items, {secret} secret cells")
    return 0


def _days(retention: timedelta | None) -> str:
    if retention is None:
        return "no limit (open data)"
    return f"{retention / timedelta(days=1):g} days"


async def _open_data(args: argparse.Namespace, config: AgreementsConfig, admin: KafkaAccess) -> int:
    """One CSV and one DCAT-AP record per public agreement that released cells of the day."""
    states = await agreement_states(admin, config.indicators)
    cells: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in await read_whole(admin, share_topic(PUBLIC_PARTY)):
        uid = dict(record.headers).get(AGREEMENT_HEADER, b"").decode()
        cells[uid] += json.loads(record.value)
    folder = args.out / args.day.isoformat()
    written = 0
    for uid, released in sorted(cells.items()):
        state = states.get(uid)
        if state is None or state.agreement is None:
            print(f"{uid}: its cells are skipped: the agreement is no longer granted (`agreements list`)")
            continue
        name = state.agreement.name
        calendar = ZoneCalendar(config.time_zone)
        files = open_data_files(
            state.agreement, released, args.day, f"{name}.csv", datetime.now(UTC), calendar
        )
        if not files.rows:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.csv").write_bytes(files.csv)
        record = json.dumps(files.record, indent=2, ensure_ascii=False) + "\n"
        (folder / f"{name}.dcat.jsonld").write_text(record, encoding="utf-8")
        print(f"{folder / name}.csv: {files.rows} cells; record {folder / name}.dcat.jsonld")
        written += 1
    if not written:
        print(f"no cell of {args.day} was released on {share_topic(PUBLIC_PARTY)}")
    return 0
