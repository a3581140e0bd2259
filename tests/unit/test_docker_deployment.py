"""docker/ keeps the security of the local stack (docs/security.md, docs/deployment.md):
Kafka's listeners in TLS beyond the loopback, Mosquitto with TLS and logins only, no
default secret in the compose file, the CA's key in one service, each service with its own
passwords only. Each rule is also shown to catch the mistake it is there for.

The compose file is read by check-jsonschema, the tool `make lint` already runs on it,
against a schema built here from the rules below (the venv has no YAML library of its own).
tests/integration/test_docker_configs.py runs the two broker files on the real brokers.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from schemas import kafka_principals, mqtt_principals
from stack.kafka_broker import BROKER

DOCKER = Path(__file__).resolve().parents[2] / "docker"
COMPOSE = DOCKER / "compose.yaml"
KAFKA_PROPERTIES = DOCKER / "kafka" / "server.properties"
MOSQUITTO_CONF = DOCKER / "mosquitto" / "mosquitto.conf"

SECRET = "(PASSWORD|TOKEN)$"  # an environment variable holding a secret, by its name
KAFKA_PASSWORDS = [f"ZC_KAFKA_{p.upper()}_PASSWORD" for p in (BROKER, *kafka_principals.SERVICE_PRINCIPALS)]
MQTT_PASSWORDS = [f"ZC_MQTT_{p.upper()}_PASSWORD" for p in mqtt_principals.SERVICE_PRINCIPALS]


def _own(*names: str) -> dict[str, str]:
    return {name: name for name in names}


# Every service of the compose file, with the secrets it holds: its environment variable ->
# the .env variable it is required from. A service holds these and no other; a new service
# must be added here, which is when its secrets are reviewed.
HOLDS: dict[str, dict[str, str]] = {
    "tls": {},
    **{f"kafka-{node}": _own("ZC_KAFKA_BROKER_PASSWORD") for node in (1, 2, 3)},
    "kafka-setup": _own(*KAFKA_PASSWORDS),
    "mqtt-init": _own("ZC_MQTT_ADMIN_PASSWORD"),
    "mosquitto": {},
    "mqtt-setup": _own(*MQTT_PASSWORDS),
    "influxdb": {
        "DOCKER_INFLUXDB_INIT_PASSWORD": "ZC_INFLUX_PASSWORD",
        "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN": "ZC_INFLUX_TOKEN",
    },
    "influx-setup": _own("ZC_INFLUX_TOKEN"),
    **{
        f"bridge-{n}": _own("ZC_KAFKA_BRIDGE_PASSWORD", "ZC_MQTT_BRIDGE_PASSWORD", "ZC_METRICS_TOKEN")
        for n in (1, 2)
    },
    **{f"worker-{n}": _own("ZC_KAFKA_WORKER_PASSWORD", "ZC_WORKER_WEB_TOKEN") for n in (1, 2)},
    "sink": _own("ZC_KAFKA_SINK_PASSWORD", "ZC_MQTT_SINK_PASSWORD", "ZC_METRICS_TOKEN"),
    "collect": _own("ZC_KAFKA_COLLECTOR_PASSWORD", "ZC_METRICS_TOKEN"),
    "share": _own("ZC_KAFKA_SHARER_PASSWORD", "ZC_METRICS_TOKEN"),
    # Its InfluxDB token comes from influx-setup's volume for it, mounted read-only.
    "analyse": _own("ZC_KAFKA_ANALYST_PASSWORD"),
    # Its scrape tokens come as compose secrets (files), from the same .env variables.
    "prometheus": {},
    "grafana": {"GF_SECURITY_ADMIN_PASSWORD": "ZC_GRAFANA_ADMIN_PASSWORD"},
    "admin": _own("ZC_MQTT_ADMIN_PASSWORD", "ZC_KAFKA_ADMIN_PASSWORD"),
}
CA_KEY_VOLUME = "tls-ca"
PUBLISHED = {"mosquitto": ["8883:8883"], "influxdb": ["8086:8086"], "grafana": ["3000:3000"]}
DONE = {"required": ["condition"], "properties": {"condition": {"const": "service_completed_successfully"}}}
# Who starts only once the brokers are set up (their principals exist).
SET_UP_FIRST = {
    "bridge-1": ("kafka-setup", "mqtt-setup"),
    "bridge-2": ("kafka-setup", "mqtt-setup"),
    "worker-1": ("kafka-setup",),
    "worker-2": ("kafka-setup",),
    "sink": ("kafka-setup", "mqtt-setup"),
    "collect": ("kafka-setup",),
    "share": ("kafka-setup",),
    "analyse": ("kafka-setup", "influx-setup"),
}


def _service_rules(name: str) -> dict[str, Any]:
    holds = HOLDS[name]
    environment: dict[str, Any] = {
        "type": "object",
        "required": sorted(holds),
        # Required from .env, with a message: `${VAR:?message}`, never a default.
        "properties": {
            key: {"type": "string", "pattern": rf"^\$\{{{var}:\?.+\}}$"} for key, var in holds.items()
        },
        "propertyNames": {"anyOf": [{"not": {"pattern": SECRET}}, {"enum": sorted(holds)}]},
    }
    volumes: dict[str, Any] = {"items": {"not": {"pattern": f"^{CA_KEY_VOLUME}:"}}}
    if name == "tls":
        volumes = {"contains": {"pattern": f"^{CA_KEY_VOLUME}:"}}
    rules: dict[str, Any] = {
        "type": "object",
        "properties": {"environment": environment, "volumes": volumes},
    }
    if holds:
        rules["required"] = ["environment"]
    if name in PUBLISHED:
        rules["properties"]["ports"] = {"const": PUBLISHED[name]}
    else:
        rules["not"] = {"required": ["ports"]}
    if name in SET_UP_FIRST:
        rules["required"] = [*rules.get("required", []), "depends_on"]
        rules["properties"]["depends_on"] = {
            "required": list(SET_UP_FIRST[name]),
            "properties": {step: DONE for step in SET_UP_FIRST[name]},
        }
    if name == "kafka-setup":
        # The broker's own login is taken on a Kafka node's own listener at localhost only.
        rules["required"] = [*rules["required"], "network_mode"]
        rules["properties"]["network_mode"] = {"const": "service:kafka-1"}
        environment["required"] = [*environment["required"], "ZC_KAFKA_HOST", "ZC_KAFKA_INTERNAL_TLS"]
        environment["properties"]["ZC_KAFKA_HOST"] = {"const": "localhost"}
        # ... over TLS: that listener reaches across containers, and carries the password.
        environment["properties"]["ZC_KAFKA_INTERNAL_TLS"] = {"const": "true"}
    return rules


def compose_schema() -> dict[str, Any]:
    """What docker/compose.yaml must keep, as a JSON Schema of its parsed content."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["services", "x-service-env"],
        "properties": {
            "x-service-env": {"propertyNames": {"not": {"pattern": SECRET}}},
            "services": {
                "type": "object",
                "required": sorted(HOLDS),
                "properties": {name: _service_rules(name) for name in HOLDS},
                "additionalProperties": False,
            },
        },
    }


def compose_problems(compose: Path, tmp_path: Path) -> list[str]:
    """Where ``compose`` breaks a rule (JSON paths and messages); empty when it keeps them all."""
    schema = tmp_path / "compose-rules.schema.json"
    schema.write_text(json.dumps(compose_schema()))
    tool = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert tool is not None, "check-jsonschema (a dev tool of pyproject.toml) is not installed"
    done = subprocess.run(
        [tool, "--output-format", "json", "--schemafile", str(schema), str(compose)],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(done.stdout)
    assert done.returncode == (0 if report["status"] == "ok" else 1), done.stderr
    problems = [f"{error['path']}: {error['message']}" for error in report.get("errors", [])]
    assert not report.get("parse_errors"), report["parse_errors"]
    return problems


def test_the_compose_file_keeps_every_rule(tmp_path: Path) -> None:
    assert compose_problems(COMPOSE, tmp_path) == []


MUTATIONS = {
    "a password with a default": (
        lambda text: text.replace(
            "${ZC_KAFKA_WORKER_PASSWORD:?set ZC_KAFKA_WORKER_PASSWORD, the worker's Kafka password "
            "(docs/deployment.md)}",
            "${ZC_KAFKA_WORKER_PASSWORD:-changeme}",
        ),
        "$.services['kafka-setup'].environment.ZC_KAFKA_WORKER_PASSWORD",
    ),
    "a password written in the file": (
        lambda text: text.replace(
            "ZC_KAFKA_BROKER_PASSWORD: ${ZC_KAFKA_BROKER_PASSWORD:?set ZC_KAFKA_BROKER_PASSWORD, "
            "the Kafka broker's own password (docs/deployment.md)}\n    volumes:",
            "ZC_KAFKA_BROKER_PASSWORD: hunter2\n    volumes:",
            1,
        ),
        "$.services['kafka-1'].environment.ZC_KAFKA_BROKER_PASSWORD",
    ),
    "the bridge given the worker's password": (
        lambda text: text.replace(
            (line := "  bridge-2:\n    <<: *bridge\n") + "    environment:\n",
            line + "    environment:\n      ZC_KAFKA_WORKER_PASSWORD: ${ZC_KAFKA_WORKER_PASSWORD:?x}\n",
        ),
        "$.services['bridge-2'].environment",
    ),
    "a secret in every service's shared environment": (
        lambda text: text.replace(
            "x-service-env: &service-env\n",
            "x-service-env: &service-env\n  ZC_KAFKA_ADMIN_PASSWORD: ${ZC_KAFKA_ADMIN_PASSWORD:?x}\n",
        ),
        "$['x-service-env']",
    ),
    "the CA's key mounted in Kafka": (
        lambda text: text.replace(
            "      - kafka-tls:/etc/zerocarbon/kafka-tls:ro\n",
            "      - kafka-tls:/etc/zerocarbon/kafka-tls:ro\n      - tls-ca:/ca:ro\n",
            1,
        ),
        "$.services['kafka-1'].volumes",
    ),
    "kafka-setup's login in clear": (
        lambda text: text.replace(
            '      ZC_KAFKA_INTERNAL_TLS: "true"\n', '      ZC_KAFKA_INTERNAL_TLS: "false"\n'
        ),
        "$.services['kafka-setup'].environment.ZC_KAFKA_INTERNAL_TLS",
    ),
    "kafka-setup outside Kafka's network": (
        lambda text: text.replace('    network_mode: "service:kafka-1"\n', ""),
        "$.services['kafka-setup']",
    ),
    "a plaintext MQTT port published": (
        lambda text: text.replace('      - "8883:8883"\n', '      - "8883:8883"\n      - "1883:1883"\n'),
        "$.services.mosquitto.ports",
    ),
    "the sink started before Kafka's principals exist": (
        lambda text: text.replace(
            "      influx-setup: { condition: service_completed_successfully }\n"
            "      kafka-setup: { condition: service_completed_successfully }\n",
            "      influx-setup: { condition: service_completed_successfully }\n"
            "      kafka-setup: { condition: service_started }\n",
        ),
        "$.services.sink.depends_on['kafka-setup'].condition",
    ),
}


@pytest.mark.parametrize("mistake", sorted(MUTATIONS))
def test_each_compose_rule_catches_its_mistake(mistake: str, tmp_path: Path) -> None:
    mutate, where = MUTATIONS[mistake]
    text = COMPOSE.read_text()
    mutated = mutate(text)
    assert mutated != text, f"the mutation {mistake!r} no longer applies to {COMPOSE}"
    (tmp_path / "compose.yaml").write_text(mutated)
    problems = compose_problems(tmp_path / "compose.yaml", tmp_path)
    assert any(problem.startswith(where) for problem in problems), problems


# -- Kafka's server.properties ---------------------------------------------------------------


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def _listeners(value: str) -> dict[str, str]:
    """``NAME://host:port,...`` -> {name: host}."""
    found = (re.fullmatch(r"([A-Z_]+)://(.*):(\d+)", item.strip()) for item in value.split(","))
    return {m.group(1): m.group(2) for m in found if m is not None}


def kafka_problems(text: str) -> list[str]:
    """How a broker configuration falls short of docs/security.md; empty when it does not."""
    props = properties(text)
    problems = []
    protocols = dict(
        pair.split(":", 1) for pair in props.get("listener.security.protocol.map", "").split(",")
    )
    for key in ("listeners", "advertised.listeners"):
        for name, host in _listeners(props.get(key, "")).items():
            protocol = protocols.get(name, name)
            if protocol in ("PLAINTEXT", "SASL_PLAINTEXT") and host != "127.0.0.1":
                problems.append(f"{key}: {name} ({protocol}) is bound to {host or 'every interface'}")
            elif protocol not in ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"):
                problems.append(f"{key}: {name} speaks {protocol}")
    controller = props.get("controller.listener.names", "")
    voters = props.get("controller.quorum.voters", "")
    beyond = [v for v in voters.split(",") if not re.fullmatch(r"\d+@127\.0\.0\.1:\d+", v)]
    if beyond and protocols.get(controller) != "SASL_SSL":
        problems.append(f"the KRaft controllers are reached at {beyond} over {protocols.get(controller)}")
    # The clients' listener takes SCRAM logins only; the brokers' own (controller,
    # inter-broker) take the broker's PLAIN login, which only the broker knows.
    mechanisms = props.get("listener.name.client.sasl.enabled.mechanisms")
    if mechanisms != "SCRAM-SHA-512":
        problems.append(f"CLIENT takes {mechanisms}, not SCRAM-SHA-512 only")
    wanted = {
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "auto.create.topics.enable": "false",
    }
    problems += [
        f"{key} is {props.get(key)!r}, not {value!r}"
        for key, value in wanted.items()
        if props.get(key) != value
    ]
    for password in re.findall(r'password="([^"]*)"', text):
        if password != "${env:ZC_KAFKA_BROKER_PASSWORD}":
            problems.append(f"a password is written in the file ({len(password)} characters)")
    return problems


def test_kafka_speaks_tls_beyond_the_loopback() -> None:
    assert kafka_problems(KAFKA_PROPERTIES.read_text()) == []


KAFKA_MUTATIONS = {
    "the inter-broker listener in clear": ("INTERNAL:SASL_SSL", "INTERNAL:SASL_PLAINTEXT"),
    "the clients' listener in clear": ("CLIENT:SASL_SSL", "CLIENT:SASL_PLAINTEXT"),
    "the controllers reached in clear": ("CONTROLLER:SASL_SSL", "CONTROLLER:SASL_PLAINTEXT"),
    "everyone allowed without an ACL": (
        "allow.everyone.if.no.acl.found=false",
        "allow.everyone.if.no.acl.found=true",
    ),
    "a password in the file": ('password="${env:ZC_KAFKA_BROKER_PASSWORD}"', 'password="hunter2"'),
    "PLAIN taken from clients": (
        "listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512",
        "listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN",
    ),
}


@pytest.mark.parametrize("password", ['with"quote', "with\\backslash", ""])
def test_kafkas_start_script_refuses_a_password_its_jaas_configuration_cannot_hold(
    password: str, tmp_path: Path
) -> None:
    """A double quote or a backslash would end or escape the JAAS value server.properties puts
    the password in; an empty one is no password. The script stops before running anything."""
    done = subprocess.run(
        ["sh", str(DOCKER / "kafka" / "start.sh")],
        env={"PATH": "/usr/bin:/bin", "KAFKA_HOME": str(tmp_path), "ZC_KAFKA_BROKER_PASSWORD": password},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "ZC_KAFKA_BROKER_PASSWORD" in done.stderr, done.stderr


# -- Mosquitto's configuration ---------------------------------------------------------------


def mosquitto_problems(text: str) -> list[str]:
    """How a Mosquitto configuration falls short of docs/security.md; empty when it does not."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    problems = []
    if "allow_anonymous false" not in lines or "allow_anonymous true" in lines:
        problems.append("anonymous clients are not refused")
    if any(line.startswith("per_listener_settings true") for line in lines):
        problems.append("per_listener_settings would let a listener allow anonymous clients")
    starts = [n for n, line in enumerate(lines) if line.startswith("listener ")]
    if not starts:
        problems.append("no listener")
    for start, end in zip(starts, [*starts[1:], len(lines)], strict=True):
        block = lines[start:end]
        # Before the next listener, or the first general option, which ends a listener's block.
        options = {line.split()[0] for line in block[1:]}
        if not {"certfile", "keyfile"} <= options:
            problems.append(f"`{block[0]}` has no TLS certificate")
    if "plugin /usr/lib/mosquitto_dynamic_security.so" not in lines:
        problems.append("the dynamic-security plugin of the eclipse-mosquitto image is not loaded")
    if not any(line.startswith("plugin_opt_config_file /mosquitto/data/") for line in lines):
        problems.append("the plugin's file is not in the broker's data volume")
    return problems


def test_mosquitto_takes_logins_over_tls_only() -> None:
    assert mosquitto_problems(MOSQUITTO_CONF.read_text()) == []


MOSQUITTO_MUTATIONS = {
    "anonymous clients let in": ("allow_anonymous false", "allow_anonymous true"),
    "a plaintext listener": ("listener 8883\n", "listener 1883\nlistener 8883\n"),
    "the plugin not loaded": ("plugin /usr/lib/mosquitto_dynamic_security.so\n", ""),
}


CONFIG_MUTATIONS = {
    mistake: (path, check, old, new)
    for path, check, mutations in (
        (KAFKA_PROPERTIES, kafka_problems, KAFKA_MUTATIONS),
        (MOSQUITTO_CONF, mosquitto_problems, MOSQUITTO_MUTATIONS),
    )
    for mistake, (old, new) in mutations.items()
}


@pytest.mark.parametrize("mistake", sorted(CONFIG_MUTATIONS))
def test_each_broker_rule_catches_its_mistake(mistake: str) -> None:
    path, check, old, new = CONFIG_MUTATIONS[mistake]
    text = path.read_text()
    assert old in text, f"the mutation {mistake!r} no longer applies to {path}"
    assert check(text.replace(old, new, 1)) != []


def test_the_brokers_read_what_the_one_shots_write() -> None:
    """The keystore, the plugin's file and the TLS files are where compose puts them."""
    compose = COMPOSE.read_text()
    props = properties(KAFKA_PROPERTIES.read_text())
    keystore = Path(props["listener.name.client.ssl.keystore.location"])
    assert f"kafka-tls:{keystore.parent}:ro" in compose and keystore.name == "server-keystore.pem"
    assert all(f"kafka-data-{node}:{props['log.dirs']}" in compose for node in (1, 2, 3))
    assert Path(props["ssl.truststore.location"]).parent == keystore.parent
    conf = dict(
        line.split(" ", 1) for line in MOSQUITTO_CONF.read_text().splitlines() if line and line[0] != "#"
    )
    assert f'"--dynsec-file", "{conf["plugin_opt_config_file"]}"' in compose
    for option, name in (("cafile", "ca.crt"), ("certfile", "server.crt"), ("keyfile", "server.key")):
        assert conf[option] == f"/mosquitto/tls/{name}"
    assert "mosquitto-tls:/mosquitto/tls:ro" in compose
