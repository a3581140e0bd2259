"""The tests' own paho clients reach Mosquitto as every client of the service does: over TLS
when the settings say so (the local stack's default), trusting the stack's CA only."""

from __future__ import annotations

import contextlib

import paho.mqtt.client as mqtt

from config.settings import Settings
from config.tls import client_tls_context
from zerocarbon.component_configs import mqtt_ca_file


def secure(client: mqtt.Client, settings: Settings) -> mqtt.Client:
    """``client``, set for TLS when ``settings`` ask for it; call before ``connect``."""
    ca_file = mqtt_ca_file(settings)
    if ca_file is not None:
        with contextlib.suppress(ValueError):  # paho: "SSL/TLS has already been configured"
            client.tls_set_context(client_tls_context(ca_file))
    return client
