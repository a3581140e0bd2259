"""The naive baseline: the same aggregation as a textbook faust agent, one reading per Kafka
message and one table update per reading.

Input: every reading of the workload as its own message (keyed by commune). For each one,
the agent computes kWh and kgCO2e (same formula and factors as ours), reads its series'
entry from a faust table (RocksDB, with its changelog topic), adds the reading to the
current 1 min, 15 min, 1 h and 1 day windows of the series, and writes the entry back. A
reading that starts a new window emits the previous one's final values (the input is in
event-time order per series, so no grace is needed). Imports nothing of the service.

Usage: ``ZC_BENCH_PEER_CONFIG=CONFIG python naive_faust.py`` (runs until stopped); when the
expected readings are all processed it writes the result file named in the configuration.
"""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import faust

CONFIG = json.loads(Path(os.environ["ZC_BENCH_PEER_CONFIG"]).read_text())
KAFKA: dict[str, str] = CONFIG["kafka"]  # librdkafka properties: the brokers, the login, the CA
FACTORS: dict[str, float] = CONFIG["factors"]
KWH_PER_UNIT: dict[str, float] = CONFIG["kwh_per_unit"]
SIZES: list[int] = CONFIG["windows_seconds"]
INDICATORS = ("energy_consumed_kwh", "emissions_kgco2e")


def _credentials(kafka: dict[str, str]) -> faust.SASLCredentials | None:
    """The login of ``kafka``'s properties, over TLS when they name a CA, as faust takes it."""
    if "sasl.username" not in kafka:
        return None
    ca = kafka.get("ssl.ca.location")
    return faust.SASLCredentials(
        username=kafka["sasl.username"],
        password=kafka["sasl.password"],
        ssl_context=ssl.create_default_context(cafile=ca) if ca else None,
        mechanism=kafka["sasl.mechanisms"],
    )


app = faust.App(
    CONFIG["app_id"],
    broker=f"kafka://{KAFKA['bootstrap.servers']}",
    broker_credentials=_credentials(KAFKA),
    store="rocksdb://",
    datadir=CONFIG["state_dir"],
    topic_partitions=CONFIG["partitions"],
    consumer_auto_offset_reset="earliest",
    web_enabled=False,
)
source = app.topic(CONFIG["input_topic"], key_type=bytes, value_type=bytes, key_serializer="raw",
                   value_serializer="raw")  # fmt: skip
out = app.topic(CONFIG["output_topic"], key_type=bytes, value_type=bytes, key_serializer="raw",
                value_serializer="raw")  # fmt: skip
windows = app.Table("windows", default=dict, partitions=CONFIG["partitions"])
progress: dict[str, Any] = {"readings": 0, "outputs": 0}


@app.agent(source)
async def aggregate(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
    async for key, value in stream.items():
        if not progress["readings"]:
            progress["t0"], progress["cpu0"] = time.monotonic(), time.process_time()
        event = json.loads(value)
        kwh = event["quantity"] * KWH_PER_UNIT[event["unit"]]
        co2 = kwh * FACTORS[event["carrier"]]
        ts = int(datetime.fromisoformat(event["interval_start"] or event["event_time"]).timestamp())
        commune, sector, carrier = event["commune"], event["sector"], event["carrier"]
        series = f"{commune}|{sector}|{carrier}"
        entry: dict[str, list[float]] = windows[series]
        for size in SIZES:
            start = ts - ts % size
            current = entry.get(str(size))
            if current is not None and current[0] != start:
                dims = {"commune": commune, "sector": sector, "carrier": carrier}
                for indicator, total in zip(INDICATORS, current[1:], strict=True):
                    row = {"indicator": indicator, "dimensions": dims, "size": size, "start": int(current[0]),
                           "value": total}  # fmt: skip
                    await out.send(key=key, value=json.dumps(row).encode())
                    progress["outputs"] += 1
                current = None
            if current is None:
                entry[str(size)] = [start, kwh, co2]
            else:
                current[1] += kwh
                current[2] += co2
        windows[series] = entry  # the one table update of this reading
        progress["readings"] += 1
        if progress["readings"] == CONFIG["readings"]:
            Path(CONFIG["result"]).write_text(
                json.dumps(
                    {
                        "readings": progress["readings"],
                        "wall_seconds": time.monotonic() - progress["t0"],
                        "cpu_seconds": time.process_time() - progress["cpu0"],
                        "outputs": progress["outputs"],
                    }
                )
            )
        yield None


if __name__ == "__main__":
    faust.Worker(app, loglevel="warning").execute_from_commandline()
