"""What `zerocarbon simulate` and `replay` need to know (the CLI builds it from the settings),
and whom they publish as."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from config.kafka_access import KafkaAccess
from schemas.mqtt_principals import MqttLogin


@dataclass(frozen=True, slots=True)
class DeviceSideConfig:
    """Where the device side sends, and the reference data (communes, registry) it draws on."""

    mqtt_host: str
    mqtt_port: int
    kafka: KafkaAccess  # `replay --to kafka`, as partners send
    reference_dir: Path
    mqtt_login: MqttLogin | None = None  # the gateway's: publishes on any device topic
    mqtt_ca_file: Path | None = None  # MQTT over TLS, trusting this CA


def add_login_arguments(group: argparse._ActionsContainer) -> None:
    """``--username`` and ``--password-file``: publish as another principal than the gateway."""
    group.add_argument(
        "--username",
        help="MQTT user name to publish as (default: the gateway principal, ZC_MQTT_GATEWAY_USERNAME, "
        "allowed on every device topic zc/+/+/+; a device's own credential allows its topic only)",
    )
    group.add_argument(
        "--password-file",
        type=Path,
        help="file holding that user's password (never a command-line argument: any user of the "
        "machine can read those); default: the gateway's, ZC_MQTT_GATEWAY_PASSWORD or the one "
        "`zerocarbon stack up` generated",
    )


def publishing_login(config: DeviceSideConfig, username: str | None, password_file: Path | None) -> MqttLogin:
    """Whom to publish as: ``username`` with its ``password_file``, else the gateway;
    ValueError saying what to give when neither is known."""
    if username is not None or password_file is not None:
        if username is None or password_file is None:
            raise ValueError("--username and --password-file go together")
        try:
            password = password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ValueError(f"--password-file: {exc}") from exc
        return MqttLogin(username, password)
    if config.mqtt_login is None:
        raise ValueError(
            "no MQTT credential to publish with: on the local stack run `zerocarbon stack up` (it "
            "generates the gateway's), elsewhere set ZC_MQTT_GATEWAY_PASSWORD, or give --username "
            "and --password-file"
        )
    return config.mqtt_login
