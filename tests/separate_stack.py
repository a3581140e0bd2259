"""A stack of a test's own beside the suite's isolated one: its own home and ports.

A test that must break or wipe a whole stack (lose a broker of three, lose the stack's home)
cannot do it to the isolated instance every other test shares. Its settings are the isolated
ones with another home and the ports below, all under tests/free_ports.py's range and apart
from the suite's fixed ones (1xxxx: stack/isolated_stack.py). Inside ``separate_stack``, the
environment names it, so every process the test starts (`zerocarbon up`, a worker, a bridge,
the simulator) runs against it. The suite holds the isolated instance's lock meanwhile, so no
other run on this machine uses these ports.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from config.settings import Settings

SEPARATE_PORTS = {
    "ZC_KAFKA_PORT": "17092",  # a second and third broker: 17192, 17292 (config/kafka_cluster.py)
    "ZC_KAFKA_CONTROLLER_PORT": "17093",
    "ZC_KAFKA_INTERNAL_PORT": "17094",
    "ZC_MQTT_PORT": "17883",
    "ZC_MQTT_PLAIN_PORT": "17884",
    "ZC_INFLUX_PORT": "17086",
    "ZC_WORKER_WEB_PORT": "17066",
    "ZC_VIEW_PORT": "17088",
    "ZC_PROMETHEUS_PORT": "17479",
}


@contextmanager
def separate_stack(home: Path, **settings: str) -> Iterator[Settings]:
    """The environment pointed at a stack in ``home`` (``settings``: more ``ZC_*`` values) while
    the block runs; the settings it makes."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**SEPARATE_PORTS, "ZC_STACK_HOME": str(home), **settings}.items():
            patch.setenv(name, value)
        yield Settings()
