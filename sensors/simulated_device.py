"""What every simulated device shares: its identity fields, its clock, and how it writes times.

A device model is a small class (one per kind, in ``energy_devices.py``,
``environment_devices.py`` and ``mobility_devices.py``) whose ``fields`` returns the family
fields of one reading; the envelope (schema, ids, commune, producer, event time) is added
here, so every model produces a complete payload of its family's contract.
"""

from __future__ import annotations

import json
import random
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Any

from sensors.contract_names import DEVICE_FIELD, SCHEMA_NAME
from sensors.fleet import DeviceSpec
from sensors.load_shapes import LocalClock

_ENCODER = json.JSONEncoder(separators=(",", ":"))  # json.dumps(separators=) builds one per call
_iso_cache: dict[float, str] = {}


def iso_utc(t: float) -> str:
    """UTC epoch seconds as RFC 3339 with a ``Z`` (memoised: devices share their ticks)."""
    text = _iso_cache.get(t)
    if text is None:
        if len(_iso_cache) > 50_000:
            _iso_cache.clear()
        text = datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        _iso_cache[t] = text
    return text


class SimulatedDevice(ABC):
    """A device of one kind: builds the payload of one reading at a given time."""

    def __init__(self, spec: DeviceSpec, rng: random.Random) -> None:
        self.spec = spec
        self.interval_s = spec.kind.interval_s
        self.reports_index = False  # a cumulative counter, which index resets apply to
        self.envelope: dict[str, Any] = {
            "schema": SCHEMA_NAME[spec.family],
            DEVICE_FIELD[spec.family]: spec.device_id,
            "commune": spec.commune,
            "producer_id": spec.kind.producer_id,
        }
        self._prefix = _ENCODER.encode(self.envelope)[:-1].encode() + b","
        self._id_prefix = f"{spec.device_id}-"
        self.setup(rng)

    def tag_run(self, run: str) -> None:
        """Make this run's event ids its own: ``run`` goes between the device id and its clock."""
        self._id_prefix = f"{self.spec.device_id}-{run}-"

    def setup(self, rng: random.Random) -> None:  # noqa: B027 - optional hook, nothing by default
        """Draw the device's own characteristics (size, capacity...) once, from the seed."""

    @abstractmethod
    def fields(self, t: float, device_t: float, clock: LocalClock, rng: random.Random) -> dict[str, Any]:
        """The family fields of the reading at true time ``t``, stamped by the device at ``device_t``."""

    def payload(self, t: float, device_t: float, clock: LocalClock, rng: random.Random) -> bytes:
        """The whole event as JSON: envelope and fields; the event id is the device id, the run's
        tag if any, and the device's clock (last: the fault reconciliation reads it back)."""
        fields = {
            "event_id": f"{self._id_prefix}{int(device_t)}",
            "event_time": iso_utc(device_t),
            **self.fields(t, device_t, clock, rng),
        }
        # The envelope never changes: it is encoded once, and only the rest per reading
        # (this is the simulator's hot path, bench/simulator_rate.py).
        return self._prefix + _ENCODER.encode(fields)[1:].encode()

    def reset_index(self) -> None:  # noqa: B027 - optional hook: only index meters have one
        """Set a cumulative index back to zero, as a replaced or reset meter does."""
