"""The TLS context every client of the service uses: it trusts one CA and checks the name.

One function for Kafka's clients and MQTT's alike, so neither can drift into accepting any
certificate. Contexts are cached per CA file: a process's clients share one.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=8)
def client_tls_context(ca_file: Path) -> ssl.SSLContext:
    """A client context trusting ``ca_file`` only, checking the server's name, TLS 1.2 or later."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
