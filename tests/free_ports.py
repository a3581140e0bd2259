"""Ports for the servers a test starts itself (a Mosquitto, Kafka, a page, Chromium's driver).

A port the kernel hands out for ``bind(0)`` comes from the ephemeral range (32768-60999 here),
the same range every outgoing connection's local port comes from: between the probe's close
and the server's bind, a client of the suite can take it, and a CI run's Mosquitto stopped on
"Address already in use". These are drawn below that range, where no connection's local port
falls, and checked free when drawn.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_DEFAULT_EPHEMERAL = (32768, 60999)
_LOW = 20000  # above the suite's own fixed ports (18xxx, 19xxx: tests/conftest.py, isolated_stack)
_handed_out: set[int] = set()  # never twice in a run: a test draws several before it binds any


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL[0]


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, outside the ephemeral range."""
    high = max(_LOW + 100, _ephemeral_start())
    for _ in range(200):
        port = random.randrange(_LOW, high)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port found between {_LOW} and {high}")
