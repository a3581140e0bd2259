"""Kafka identities and TLS without a broker: each role's ACLs, the broker's generated
configuration, the SCRAM credential as the broker stores it, the clients' options and the
local CA (docs/security.md, "Partners, readers and Kafka")."""

from __future__ import annotations

import hashlib
import hmac
import ssl
import stat
import subprocess
from pathlib import Path

import pytest

from config.kafka_access import KafkaAccess
from config.settings import Settings
from schemas.catalogue import DEAD_LETTER_TOPIC, INDICATOR_TOPIC, raw_topic, valid_topic
from schemas.kafka_principals import (
    KafkaAcl,
    KafkaLogin,
    partner_acls,
    reader_acls,
    service_acls,
    username_problem,
)
from stack.certificate_authority import ensure_server_certificate
from stack.kafka_broker import KafkaBroker
from stack.kafka_identities import SCRAM_ITERATIONS, scram_upsertion
from zerocarbon import component_configs


def _grants(acls: tuple[KafkaAcl, ...], operation: str) -> set[tuple[str, str, str]]:
    return {(a.resource, a.name, a.pattern) for a in acls if a.operation in (operation, "all")}


def _may(acls: tuple[KafkaAcl, ...], operation: str, topic: str) -> bool:
    """Whether ``acls`` allow ``operation`` on ``topic``, as Kafka matches literal and prefixed."""
    return any(
        a.resource == "topic"
        and a.operation in (operation, "all")
        and (a.name == topic if a.pattern == "literal" else topic.startswith(a.name))
        for a in acls
    )


def test_a_partner_may_write_its_families_raw_topics_only() -> None:
    acls = partner_acls(("energy",))
    assert _may(acls, "write", raw_topic("energy"))
    for topic in (raw_topic("mobility"), valid_topic("energy"), INDICATOR_TOPIC, DEAD_LETTER_TOPIC):
        assert not _may(acls, "write", topic)
        assert not _may(acls, "read", topic)
    assert all(a.resource == "topic" for a in acls)  # no group, no cluster right


def test_a_reader_reads_the_indicators_in_groups_named_after_it() -> None:
    acls = reader_acls("city-screen")
    assert _may(acls, "read", INDICATOR_TOPIC)
    assert not _may(acls, "read", raw_topic("energy")) and not _may(acls, "read", valid_topic("energy"))
    assert not _may(acls, "write", INDICATOR_TOPIC)
    assert _grants(acls, "read") >= {("group", "city-screen", "prefixed")}


def test_the_services_hold_what_their_stage_needs_and_no_more() -> None:
    usernames = {"admin": "zc-admin", "bridge": "zc-bridge", "worker": "zc-worker", "sink": "zc-sink",
                 "view": "zc-view", "reader": "zc-reader"}  # fmt: skip
    acls = service_acls(usernames, worker_id="w", sink_group="s")
    assert "admin" not in acls  # a super user: no ACL
    bridge, worker, sink, view = acls["bridge"], acls["worker"], acls["sink"], acls["view"]
    assert _may(bridge, "write", raw_topic("energy")) and not _may(bridge, "read", raw_topic("energy"))
    assert not _may(bridge, "write", valid_topic("energy")) and not _may(bridge, "write", INDICATOR_TOPIC)
    assert _may(worker, "read", raw_topic("mobility")) and _may(worker, "write", valid_topic("mobility"))
    assert _may(worker, "write", INDICATOR_TOPIC) and not _may(worker, "read", INDICATOR_TOPIC)
    assert _may(sink, "read", INDICATOR_TOPIC) and not _may(sink, "read", valid_topic("energy"))
    assert not any(a.operation in ("write", "all") for a in view)
    # Nobody but faust's own internal topics may be created by a service.
    creators = [a for role in acls.values() for a in role if a.operation in ("create", "all")]
    assert creators == [KafkaAcl("topic", "w-", "all", "prefixed")]


@pytest.mark.parametrize("name", ["", "a b", "zc/raw", "é", "x" * 101])
def test_principal_names_are_plain(name: str) -> None:
    assert username_problem(name) is not None


def test_the_scram_credential_is_the_salted_password_of_rfc_5802_never_the_password() -> None:
    salt = bytes(range(32))
    name, mechanism, iterations, sent_salt, salted, _tags = scram_upsertion(KafkaLogin("p", "secret"), salt)
    assert (name, mechanism, iterations, sent_salt) == ("p", 2, SCRAM_ITERATIONS, salt)
    # Hi(password, salt, i) of RFC 5802 is PBKDF2 with HMAC-SHA-512, one block of 64 bytes.
    block = u = hmac.new(b"secret", salt + b"\x00\x00\x00\x01", hashlib.sha512).digest()
    for _ in range(SCRAM_ITERATIONS - 1):
        u = hmac.new(b"secret", u, hashlib.sha512).digest()
        block = bytes(x ^ y for x, y in zip(block, u, strict=True))
    assert salted == block and b"secret" not in salted


def test_client_options_follow_the_login_and_the_ca(tmp_path: Path) -> None:
    bare = KafkaAccess("h:1")
    assert bare.client_options() == {"bootstrap_servers": "h:1", "security_protocol": "PLAINTEXT"}
    cert = ensure_server_certificate(tmp_path, ("localhost",))
    secure = KafkaAccess("h:1", "zc-bridge", "pw", ca_file=cert.ca_file)
    options = secure.client_options()
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED and options["ssl_context"].check_hostname
    assert "pw" not in repr(secure)
    assert secure.librdkafka_properties()["ssl.ca.location"] == str(cert.ca_file)


def test_the_local_ca_signs_the_brokers_certificate_and_keeps_its_keys_private(tmp_path: Path) -> None:
    first = ensure_server_certificate(tmp_path, ("broker.example",))
    for secret in (first.key_file, first.keystore_file, first.ca_file.with_name("ca.key")):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(first.ca_file.parent.stat().st_mode) == 0o700
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(first.ca_file), str(first.cert_file)],
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stderr
    names = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(first.cert_file)],
        capture_output=True,
        text=True,
    ).stdout
    assert "DNS:broker.example" in names and "IP Address:127.0.0.1" in names
    ca_before, cert_before = first.ca_file.read_bytes(), first.cert_file.read_bytes()
    again = ensure_server_certificate(tmp_path, ("broker.example",))
    assert again.cert_file.read_bytes() == cert_before  # nothing changed: nothing issued
    renamed = ensure_server_certificate(tmp_path, ("other.example",))
    assert renamed.cert_file.read_bytes() != cert_before  # a new name: a new certificate
    assert renamed.ca_file.read_bytes() == ca_before  # by the same CA, kept


def test_the_broker_accepts_clients_over_sasl_ssl_only_and_keeps_its_own_listeners_on_loopback(
    tmp_path: Path,
) -> None:
    settings = Settings(
        stack_home=tmp_path / "stack",
        cache_dir=tmp_path / "cache",
        bind_host="10.1.2.3",
        kafka_port=9092,
        kafka_controller_port=9093,
        kafka_internal_port=9094,
    )
    broker = KafkaBroker(component_configs.stack_config(settings))
    properties = dict(
        line.split("=", 1) for line in broker._properties().splitlines() if line and not line.startswith("#")
    )
    assert (
        properties["listeners"]
        == "CLIENT://10.1.2.3:9092,CONTROLLER://127.0.0.1:9093,INTERNAL://127.0.0.1:9094"
    )
    assert "CLIENT:SASL_SSL" in properties["listener.security.protocol.map"]
    assert "PLAINTEXT:" not in properties["listener.security.protocol.map"]
    assert properties["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert properties["allow.everyone.if.no.acl.found"] == "false"
    assert properties["authorizer.class.name"].endswith("StandardAuthorizer")
    assert properties["auto.create.topics.enable"] == "false"
    password = broker.passwords()["broker"]
    assert password in properties["listener.name.internal.plain.sasl.jaas.config"]
    secrets = component_configs.kafka_credentials_file(settings.stack_home)
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    access = component_configs.kafka_access(settings, "worker")
    assert access.username == "zc-worker" and access.security_protocol == "SASL_SSL"
