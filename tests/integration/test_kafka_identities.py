"""Who may do what on the real Kafka broker (docs/security.md, "Partners, readers and Kafka"):
no client without a login or without TLS, a partner writing its family's raw topic only, a
reader reading the indicators only, a revoked partner refused at once. Partners and readers
are provisioned as an operator does, with `zerocarbon principals add`."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from aiokafka.structs import TopicPartition

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import CAUSAL_EVIDENCE_TOPIC, INDICATOR_TOPIC, raw_topic, valid_topic
from schemas.kafka_principals import ADMIN, ANALYST
from stack.kafka_broker import read_generated
from streams.kafka_admin import records_after, topic_ends
from tests.integration.broker_clients import send_one, visible_topics
from zerocarbon.component_configs import kafka_access, tls_ca_file


def _zerocarbon(*args: str) -> subprocess.CompletedProcess[str]:
    """`zerocarbon ARGS...` as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
    )


def _added(settings: Settings, *args: str) -> KafkaAccess:
    """Run `zerocarbon principals add ARGS` and log in with the password it printed once."""
    done = _zerocarbon("principals", "add", *args)
    assert done.returncode == 0, done.stderr
    password = re.search(r"^Kafka password:\s+(\S+)$", done.stdout, re.M)
    assert password is not None, done.stdout
    return KafkaAccess(settings.kafka_bootstrap, args[1], password.group(1), ca_file=tls_ca_file(settings))


@pytest.fixture
def partner(local_stack: Settings) -> Iterator[KafkaAccess]:
    """A partner allowed to publish energy readings, revoked after the test."""
    name = f"test-partner-{uuid.uuid4().hex[:8]}"
    access = _added(local_stack, "partner", name, "--family", "energy")
    yield access
    _zerocarbon("principals", "revoke", name)


@pytest.fixture
def reader(local_stack: Settings) -> Iterator[KafkaAccess]:
    name = f"test-reader-{uuid.uuid4().hex[:8]}"
    access = _added(local_stack, "reader", name)
    yield access
    _zerocarbon("principals", "revoke", name)


async def _read_one(kafka: KafkaAccess, topic: str, group: str | None = None) -> None:
    """Fetch from partition 0 of ``topic`` (in ``group``, if given): the first authorization
    error surfaces as an exception."""
    consumer = AIOKafkaConsumer(**kafka.client_options(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        if group is None:
            consumer.assign([TopicPartition(topic, 0)])
        else:
            consumer.subscribe([topic])
        await consumer.getmany(timeout_ms=3000)
        await consumer.getmany(timeout_ms=1000)
    finally:
        await consumer.stop()


def test_a_partner_writes_its_family_raw_topic_and_nothing_else(
    local_stack: Settings, partner: KafkaAccess
) -> None:
    admin = kafka_access(local_stack, ADMIN)
    marker = f'{{"test": "{uuid.uuid4().hex}"}}'.encode()
    ends = asyncio.run(topic_ends(admin, [raw_topic("energy")]))
    asyncio.run(send_one(partner, raw_topic("energy"), marker))
    assert (raw_topic("energy"), marker) in asyncio.run(records_after(admin, ends))

    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(send_one(partner, INDICATOR_TOPIC, b"{}"))
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(send_one(partner, raw_topic("mobility"), b"{}"))
    # Kafka answers a principal's metadata request with the topics it may describe only;
    # aiokafka then waits on an assigned topic it may not read, logging "not authorized".
    visible = asyncio.run(visible_topics(partner))
    assert raw_topic("energy") in visible and valid_topic("energy") not in visible
    assert INDICATOR_TOPIC not in visible


def test_a_reader_reads_the_indicators_but_not_the_readings(
    local_stack: Settings, reader: KafkaAccess
) -> None:
    assert reader.username is not None
    asyncio.run(_read_one(reader, INDICATOR_TOPIC, group=f"{reader.username}-dashboard"))
    visible = asyncio.run(visible_topics(reader))
    # The indicators and the causal evidence; not a raw, valid or dead-letter topic.
    assert visible == {INDICATOR_TOPIC, CAUSAL_EVIDENCE_TOPIC}, visible
    # Its groups are its own: another party's group name is refused.
    with pytest.raises(GroupAuthorizationFailedError):
        asyncio.run(_read_one(reader, INDICATOR_TOPIC, group="zerocarbon-influx-sink"))
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(send_one(reader, INDICATOR_TOPIC, b"{}"))


def test_the_analyst_writes_its_evidence_and_nothing_else(local_stack: Settings) -> None:
    """`zerocarbon analyse` reads InfluxDB, not Kafka: it sees its own topic only."""
    analyst = kafka_access(local_stack, ANALYST)
    assert asyncio.run(visible_topics(analyst)) == {CAUSAL_EVIDENCE_TOPIC}
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(send_one(analyst, INDICATOR_TOPIC, b"{}"))


def test_no_client_connects_without_a_login_or_without_tls(local_stack: Settings) -> None:
    ca = tls_ca_file(local_stack)
    admin = kafka_access(local_stack, ADMIN)
    assert admin.username is not None and admin.password is not None
    attempts = {
        "anonymous over TLS": KafkaAccess(local_stack.kafka_bootstrap, ca_file=ca),
        "plaintext, no TLS": KafkaAccess(local_stack.kafka_bootstrap, admin.username, admin.password),
        "wrong password": admin.as_principal(admin.username, admin.password + "x"),
    }
    for what, access in attempts.items():
        with pytest.raises(KafkaConnectionError):
            asyncio.run(asyncio.wait_for(send_one(access, raw_topic("energy"), b"{}"), timeout=30))
        print(f"refused: {what}")


def test_a_revoked_partner_is_refused_on_its_live_session_and_at_reconnection(
    local_stack: Settings, partner: KafkaAccess
) -> None:
    assert partner.username is not None

    async def scenario() -> None:
        producer = AIOKafkaProducer(**partner.client_options(), acks="all", request_timeout_ms=10_000)
        await producer.start()
        try:
            await producer.send_and_wait(raw_topic("energy"), b"{}", key=b"17300")
            done = await asyncio.to_thread(_zerocarbon, "principals", "revoke", partner.username or "")
            assert done.returncode == 0, done.stderr
            with pytest.raises(TopicAuthorizationFailedError):
                await producer.send_and_wait(raw_topic("energy"), b"{}", key=b"17300")
        finally:
            await producer.stop()
        with pytest.raises(KafkaConnectionError):
            await send_one(partner, raw_topic("energy"), b"{}")

    asyncio.run(scenario())


def test_principals_refuses_service_names_and_lists_the_roles(local_stack: Settings) -> None:
    refused = _zerocarbon("principals", "revoke", "zc-worker")
    assert refused.returncode == 2 and "service principal" in refused.stderr
    listed = _zerocarbon("principals", "list")
    assert listed.returncode == 0, listed.stderr
    kinds = {line.split()[0]: line.split()[1] for line in listed.stdout.splitlines() if line.strip()}
    assert kinds["zc-admin"] == "service" and kinds["zc-worker"] == "service"


def test_kafka_setup_provisions_a_cluster_of_ones_own_with_the_configured_passwords(
    local_stack: Settings,
) -> None:
    """`zerocarbon kafka setup`, as a deployment runs it: every password configured, none
    generated; the principals keep working with the passwords it set."""
    generated = read_generated(local_stack.stack_home)
    env = {f"ZC_KAFKA_{principal.upper()}_PASSWORD": password for principal, password in generated.items()}
    done = subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", "kafka", "setup"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "zc-worker" in done.stdout
    asyncio.run(_read_one(kafka_access(local_stack, "worker"), valid_topic("energy")))
    missing = subprocess.run(
        [sys.executable, "-m", "zerocarbon.cli", "kafka", "setup"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("ZC_KAFKA_") or k == "ZC_KAFKA_PORT"},
        timeout=60,
    )
    assert missing.returncode == 1 and "ZC_KAFKA_BROKER_PASSWORD" in missing.stderr
