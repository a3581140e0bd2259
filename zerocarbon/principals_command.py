"""`zerocarbon principals add | list | revoke | rotate`: the partners and readers on Kafka.

A partner's system publishes its readings on the raw topic of each family its agreement
names, and may do nothing else; a downstream reader consumes ``zc.indicators`` in consumer
groups named after itself. Each is a SCRAM-SHA-512 user of the broker with exactly the ACLs
of its kind (schemas/kafka_principals.py). The password is generated here, printed once,
stored nowhere in clear (the broker keeps a salted hash) and never logged. The broker is the
only record: ``list`` reads the users and ACLs back from it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import raw_topic
from schemas.families import FAMILIES
from schemas.kafka_principals import (
    OPERATION_CODES,
    PATTERN_CODES,
    RESOURCE_CODES,
    KafkaAcl,
    KafkaLogin,
    partner_acls,
    party_acls,
    reader_acls,
    username_problem,
)
from stack.errors import StackError
from stack.kafka_identities import KafkaIdentities
from stack.secret_files import new_secret

HELP = "add, list, revoke partners, readers and parties on Kafka, or rotate their secret"
DESCRIPTION = """\
Partners publish on Kafka, readers consume the indicators, parties of data-use agreements
read their own topic; each has its own SCRAM-SHA-512
credential and only the rights of its kind (docs/security.md):

  add partner NAME --family F [--family F ...]
        may write zc.raw.<F> for each family given, nothing else.
  add reader NAME
        may read zc.indicators, in consumer groups whose name starts with NAME.
  add party NAME
        a party of data-use agreements: may read zc.share.NAME only, which the sharing stage
        fills with what its agreements allow (`zerocarbon agreements`), in groups NAME*.
        Each prints the password ONCE; it is stored nowhere in clear.
  list  every SCRAM user of the broker with its kind and rights (the service principals too).
  revoke NAME
        remove its rights and its credential: a live session is refused at its next request,
        a new connection at authentication.
  rotate NAME
        a new password, printed once; new connections need it (a session already
        authenticated keeps going until it reconnects: revoke to cut it).

Needs the Kafka admin's credential: the local stack's (`zerocarbon stack up` makes it), or
ZC_KAFKA_ADMIN_USERNAME and ZC_KAFKA_ADMIN_PASSWORD.
"""


@dataclass(frozen=True, slots=True)
class PrincipalsConfig:
    """The admin's access (None: not known) and the names partners and readers may not take."""

    admin: KafkaAccess | None
    reserved_usernames: frozenset[str]  # the service principals' and the broker's


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="create a partner or a reader (its password is printed once)")
    add.add_argument("kind", choices=("partner", "reader", "party"))
    add.add_argument("name", metavar="NAME")
    add.add_argument(
        "--family",
        action="append",
        choices=sorted(FAMILIES),
        help="a partner: a family whose raw topic it may write (repeat for several)",
    )
    listing = actions.add_parser("list", help="every Kafka user with its kind and rights")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    revoke = actions.add_parser("revoke", help="remove a partner's or reader's rights and credential")
    revoke.add_argument("name", metavar="NAME")
    rotate = actions.add_parser("rotate", help="give a partner or reader a new password (printed once)")
    rotate.add_argument("name", metavar="NAME")


def from_settings(args: argparse.Namespace, settings: Settings) -> int:
    from zerocarbon.component_configs import principals_config

    return run(args, principals_config(settings))


def run(args: argparse.Namespace, config: PrincipalsConfig) -> int:
    """Run `zerocarbon principals ACTION`; exit code (2: refused input, 1: broker trouble)."""
    actions: dict[str, Callable[[argparse.Namespace, PrincipalsConfig], Coroutine[Any, Any, int]]] = {
        "add": _add,
        "list": _list,
        "revoke": _revoke,
        "rotate": _rotate,
    }
    try:
        return asyncio.run(actions[args.action](args, config))
    except ValueError as exc:
        print(f"zerocarbon principals {args.action}: {exc}", file=sys.stderr)
        return 2
    except StackError as exc:
        print(f"zerocarbon principals {args.action}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the broker unreachable, TLS refused...
        print(f"zerocarbon principals {args.action}: cannot reach Kafka: {exc}", file=sys.stderr)
        return 1


def _identities(config: PrincipalsConfig) -> KafkaIdentities:
    if config.admin is None:
        raise StackError(
            "no Kafka admin credential: on the local stack run `zerocarbon stack up` (it generates "
            "one); for another cluster set ZC_KAFKA_ADMIN_USERNAME and ZC_KAFKA_ADMIN_PASSWORD"
        )
    return KafkaIdentities(config.admin)


def _checked_name(name: str, config: PrincipalsConfig) -> str:
    if (problem := username_problem(name)) is not None:
        raise ValueError(problem)
    if name in config.reserved_usernames:
        raise ValueError(f"{name!r} is a service principal, managed by `zerocarbon stack up`")
    return name


def _grants(args: argparse.Namespace) -> tuple[KafkaAcl, ...]:
    if args.kind in ("reader", "party"):
        if args.family:
            raise ValueError(f"--family is for partners; a {args.kind} reads, it does not publish")
        return reader_acls(args.name) if args.kind == "reader" else party_acls(args.name)
    if not args.family:
        raise ValueError("a partner needs at least one --family (whose raw topic it may write)")
    return partner_acls(tuple(sorted(set(args.family))))


async def _add(args: argparse.Namespace, config: PrincipalsConfig) -> int:
    name = _checked_name(args.name, config)
    grants = _grants(args)
    secret = new_secret()
    async with _identities(config) as identities:
        if name in await identities.scram_users():
            raise ValueError(
                f"Kafka already has a user {name!r}: `zerocarbon principals rotate {name}` gives it a new "
                f"password, `zerocarbon principals revoke {name}` removes it"
            )
        await identities.set_passwords([KafkaLogin(name, secret)])
        await identities.grant_exactly(name, grants)
    print(f"Kafka {args.kind} {name} added; it may: {'; '.join(_describe(g) for g in grants)}")
    _print_secret(name, secret)
    return 0


def _print_secret(name: str, secret: str) -> None:
    print(f"Kafka user name: {name}")
    print(f"Kafka password:  {secret}")
    print("SASL_SSL with SCRAM-SHA-512. The password is shown this once and stored nowhere in clear.")


def _describe(acl: KafkaAcl) -> str:
    star = "*" if acl.pattern == "prefixed" else ""
    return f"{acl.operation} {acl.resource} {acl.name}{star}"


_CODES_BACK = (
    {code: name for name, code in RESOURCE_CODES.items()},
    {code: name for name, code in PATTERN_CODES.items()},
    {code: name for name, code in OPERATION_CODES.items()},
)


def _kind(name: str, acls: set[tuple[int, str, int, int]], config: PrincipalsConfig) -> str:
    if name in config.reserved_usernames:
        return "service"
    written = {
        topic
        for resource, topic, pattern, operation in acls
        if (resource, pattern, operation)
        == (RESOURCE_CODES["topic"], PATTERN_CODES["literal"], OPERATION_CODES["write"])
    }
    families = tuple(sorted(f for f in FAMILIES if raw_topic(f) in written))
    if families and acls == _keys(partner_acls(families)):
        return "partner"
    if acls == _keys(reader_acls(name)):
        return "reader"
    if acls == _keys(party_acls(name)):
        return "party"
    return "revoked" if not acls else "other"


def _keys(acls: tuple[KafkaAcl, ...]) -> set[tuple[int, str, int, int]]:
    return {
        (RESOURCE_CODES[a.resource], a.name, PATTERN_CODES[a.pattern], OPERATION_CODES[a.operation])
        for a in acls
    }


def _acl_text(key: tuple[int, str, int, int]) -> str:
    resources, patterns, operations = _CODES_BACK
    resource, name, pattern, operation = key
    star = "*" if patterns.get(pattern) == "prefixed" else ""
    return f"{operations.get(operation, operation)} {resources.get(resource, resource)} {name}{star}"


async def _list(args: argparse.Namespace, config: PrincipalsConfig) -> int:
    async with _identities(config) as identities:
        users = sorted(await identities.scram_users())
        rows: list[dict[str, Any]] = []
        for name in users:
            acls = await identities.acls_of(name)
            rows.append(
                {
                    "name": name,
                    "kind": _kind(name, acls, config),
                    "may": sorted(_acl_text(key) for key in acls),
                }
            )
    try:
        if args.json:
            print(json.dumps(rows, indent=2), flush=True)
        else:
            width = max((len(r["name"]) for r in rows), default=4)
            for row in rows:
                rights = "; ".join(row["may"]) or ("super user" if row["kind"] == "service" else "nothing")
                print(f"{row['name'].ljust(width)}  {row['kind'].ljust(8)}  {rights}")
            sys.stdout.flush()
    except BrokenPipeError:  # the reader left (`| head`): stop quietly, as a filter does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


async def _revoke(args: argparse.Namespace, config: PrincipalsConfig) -> int:
    name = _checked_name(args.name, config)
    async with _identities(config) as identities:
        known = name in await identities.scram_users()
        _, removed = await identities.grant_exactly(name, ())
        if not known and not removed:
            raise ValueError(f"unknown principal {name!r} (`zerocarbon principals list` shows them)")
        if known:
            await identities.remove_users([name])
    print(f"Kafka principal {name} revoked: {removed} right(s) and its credential removed")
    return 0


async def _rotate(args: argparse.Namespace, config: PrincipalsConfig) -> int:
    name = _checked_name(args.name, config)
    secret = new_secret()
    async with _identities(config) as identities:
        if name not in await identities.scram_users():
            raise ValueError(f"unknown principal {name!r} (`zerocarbon principals list` shows them)")
        await identities.set_passwords([KafkaLogin(name, secret)])
    print(f"Kafka principal {name}: new password")
    _print_secret(name, secret)
    return 0
