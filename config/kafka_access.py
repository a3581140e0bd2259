"""How one process reaches Kafka, and as whom: the brokers, a SCRAM login, the CA it trusts.

Every Kafka client of the service (faust's, aiokafka's, kcat) is built from one of these, so
no client can be left connecting anonymously or in clear by accident: the local stack's
brokers accept SASL_SSL with SCRAM-SHA-512 only (docs/security.md). A login's password is
never shown by ``repr``, so an access logged or printed stays harmless.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from config.tls import client_tls_context

SCRAM_MECHANISM = "SCRAM-SHA-512"


class MissingTopics(RuntimeError):
    """Topics a service needs are absent, or its principal may not see them."""


@dataclass(frozen=True, slots=True)
class KafkaAccess:
    """The brokers, the principal (``username``) and, with ``ca_file``, TLS."""

    bootstrap: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    # SCRAM-SHA-512 for every client; PLAIN only for the broker's own loopback listener.
    mechanism: str = SCRAM_MECHANISM

    @property
    def security_protocol(self) -> str:
        sasl = self.username is not None
        tls = self.ca_file is not None
        return {
            (True, True): "SASL_SSL",
            (True, False): "SASL_PLAINTEXT",
            (False, True): "SSL",
            (False, False): "PLAINTEXT",
        }[(sasl, tls)]

    def as_principal(self, username: str, password: str) -> KafkaAccess:
        """The same brokers and CA, another login."""
        return replace(self, username=username, password=password)

    def ssl_context(self) -> ssl.SSLContext | None:
        return client_tls_context(self.ca_file) if self.ca_file is not None else None

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.username is not None:
            options.update(
                sasl_mechanism=self.mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password or "",
            )
        if self.ca_file is not None:
            options["ssl_context"] = self.ssl_context()
        return options

    def librdkafka_properties(self) -> dict[str, str]:
        """The same, as librdkafka properties (kcat's ``-X name=value``, or a ``-F`` file)."""
        properties = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol.lower(),
        }
        if self.username is not None:
            properties.update(
                {
                    "sasl.mechanisms": self.mechanism,
                    "sasl.username": self.username,
                    "sasl.password": self.password or "",
                }
            )
        if self.ca_file is not None:
            properties["ssl.ca.location"] = str(self.ca_file)
        return properties
