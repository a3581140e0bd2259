"""What each long-running command listens on or reaches, and which secrets it holds.

The start-up check of ``config/development_secrets.py`` applied to the settings: a command
refuses to start when one of its addresses is beyond the loopback and one of its secrets is
a development value (docs/security.md, "InfluxDB tokens and secrets"). A secret a command
does not hold is not its concern: the bridge starts whatever the InfluxDB password is.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from config.development_secrets import startup_refusal
from config.settings import Settings


@dataclass(frozen=True, slots=True)
class Holdings:
    addresses: tuple[str, ...]  # settings naming a host the command listens on or connects to
    secrets: tuple[str, ...]  # settings holding a secret it uses


# The scoped InfluxDB tokens come from their settings or from the files setup wrote; a file
# holds what InfluxDB generated, never a development value, so the settings are what is checked.
HOLDINGS: dict[str, Holdings] = {
    # The local stack: InfluxDB listens on bind_host, onboarded with the password and token.
    "stack up": Holdings(("bind_host",), ("influx_password", "influx_token")),
    "demo": Holdings(("bind_host",), ("influx_password", "influx_token")),
    "influx setup": Holdings(("influx_host",), ("influx_token",)),
    "bridge": Holdings(("mqtt_host", "kafka_host"), ()),
    "worker": Holdings(("worker_web_host", "kafka_host"), ()),
    "sink": Holdings(("influx_host", "kafka_host", "mqtt_host"), ("influx_sink_token",)),
    "view": Holdings(("view_host", "influx_host", "kafka_host", "worker_web_host"), ("influx_read_token",)),
    "analyse": Holdings(("influx_host", "kafka_host"), ("influx_analysis_token",)),
}
# `up` runs the stack and every command above: it refuses what any of them would.
HOLDINGS["up"] = Holdings(
    tuple(dict.fromkeys(a for h in HOLDINGS.values() for a in h.addresses)),
    tuple(dict.fromkeys(s for h in HOLDINGS.values() for s in h.secrets)),
)


def _value(secret: object) -> str | None:
    return secret.get_secret_value() if isinstance(secret, SecretStr) else None


def refusal(settings: Settings, command: str) -> str | None:
    """Why ``command`` (a key of ``HOLDINGS``) may not start with these settings; None: it may."""
    holdings = HOLDINGS.get(command)
    if holdings is None:
        return None
    addresses = {name: str(getattr(settings, name)) for name in holdings.addresses}
    secrets = {name: _value(getattr(settings, name)) for name in holdings.secrets}
    return startup_refusal(command, addresses, secrets)
