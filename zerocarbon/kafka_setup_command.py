"""`zerocarbon kafka setup`: a Kafka deployed apart given what `zerocarbon stack up` gives the
local one — each service principal's credential, exactly its role's ACLs, the catalogue's
topics. It generates no password: a deployment sets every one."""

from __future__ import annotations

import argparse
import asyncio

from config.settings import Settings
from schemas.kafka_principals import SERVICE_PRINCIPALS, KafkaLogin, service_acls
from stack.errors import StackError
from stack.kafka_broker import BROKER
from stack.kafka_identities import provision_services
from zerocarbon.component_configs import broker_access, kafka_configured_passwords, kafka_usernames
from zerocarbon.kafka_catalogue import declare_catalogue

HELP = "set up Kafka's service principals, their ACLs and the topics (a cluster of your own)"
DESCRIPTION = (
    "For a Kafka deployed apart: as the broker's own login (ZC_KAFKA_BROKER_PASSWORD, SASL PLAIN "
    "on the broker's inter-broker listener at ZC_KAFKA_HOST:ZC_KAFKA_INTERNAL_PORT, over TLS "
    "trusting ZC_TLS_CA_FILE when ZC_KAFKA_INTERNAL_TLS is true), give each "
    "service principal the SCRAM-SHA-512 password its ZC_KAFKA_<PRINCIPAL>_PASSWORD sets and "
    "exactly the ACLs of its role; then, as the admin over SASL_SSL, create the catalogue's "
    "topics with ZC_KAFKA_REPLICATION_FACTOR copies. Idempotent. Every password must be set: "
    "none is generated outside the local stack, "
    "where `zerocarbon stack up` does all this. See docs/security.md."
)


def run(_args: argparse.Namespace, settings: Settings) -> int:
    """StackError naming the passwords to set when one is missing."""
    passwords = kafka_configured_passwords(settings)
    unset = [p for p in (BROKER, *SERVICE_PRINCIPALS) if p not in passwords]
    if unset:
        raise StackError(
            "`zerocarbon kafka setup` generates no password: set "
            + ", ".join(f"ZC_KAFKA_{p.upper()}_PASSWORD" for p in unset)
        )
    usernames = kafka_usernames(settings)
    logins = {p: KafkaLogin(usernames[p], passwords[p]) for p in SERVICE_PRINCIPALS}
    grants = service_acls(usernames, settings.worker_id, settings.sink_group)
    asyncio.run(provision_services(broker_access(settings, passwords[BROKER]), logins, grants))
    print(f"[kafka] principals {', '.join(sorted(usernames.values()))} and their ACLs set", flush=True)
    declare_catalogue(settings)
    return 0
