"""The local stack's development secrets, and the rule that keeps them on the loopback.

A development password or token is written in this repository: anyone can read it. It is
fine while every address a process listens on or connects to is a loopback one (one
machine, one person); beyond that, the process refuses to start and names the settings to
change. Pure: `zerocarbon/service_secrets.py` says which addresses and secrets each service
holds and asks ``startup_refusal``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from config.web_access import is_loopback

DEVELOPMENT_INFLUX_PASSWORD: Final = "zerocarbon-dev-password"
DEVELOPMENT_INFLUX_TOKEN: Final = "zerocarbon-dev-token-change-me-in-production"

# Every development value, whichever setting holds it: a scoped token set to the operator's
# development token is as public as the operator's.
DEVELOPMENT_VALUES: Final = frozenset({DEVELOPMENT_INFLUX_PASSWORD, DEVELOPMENT_INFLUX_TOKEN})


def environment_name(setting: str) -> str:
    """The variable that sets a setting: ``influx_token`` -> ``ZC_INFLUX_TOKEN``."""
    return f"ZC_{setting.upper()}"


def startup_refusal(
    service: str, addresses: Mapping[str, str], secrets: Mapping[str, str | None]
) -> str | None:
    """Why ``service`` may not start, or None when it may.

    ``addresses``: setting -> host the service listens on or connects to; ``secrets``:
    setting -> the secret it holds (None: not set, nothing held). It is refused when an
    address is beyond the loopback and a secret is a development value."""
    exposed = [(name, host) for name, host in addresses.items() if not is_loopback(host)]
    weak = sorted(
        name for name, value in secrets.items() if value is not None and value in DEVELOPMENT_VALUES
    )
    if not exposed or not weak:
        return None
    where = ", ".join(f"{environment_name(name)}={host or '(all interfaces)'}" for name, host in exposed)
    change = ", ".join(environment_name(name) for name in weak)
    return (
        f"`zerocarbon {service}` refuses to start: it is reachable or reaches beyond the loopback "
        f"({where}) while {change} still {'hold' if len(weak) > 1 else 'holds'} the local stack's "
        f"development value, which is public. Set {change} to a secret of your own (docs/security.md, "
        "'InfluxDB tokens and secrets'), or keep every address on 127.0.0.1."
    )
