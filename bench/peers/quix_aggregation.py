"""The peer: our energy aggregation written with Quix Streams, run from its own virtualenv.

Same input as our worker (the validation stage's records: JSON arrays of energy readings,
one Kafka message per record, keyed by partition), same windows (tumbling 1 min, 15 min,
1 h, 1 day on the reading's placement in time, its interval start, with 300 s of grace,
closed per partition like our watermark), same keys (commune x sector x carrier), same
formula (kWh = quantity x unit factor; kgCO2e = kWh x the carrier's emission factor).
Written as a Quix user would: expand each record into readings, set each reading's
timestamp, one tumbling window per size with ``reduce`` into a dict of the partition's
series, ``final()`` values exploded into one message per series on the output topic.

Imports nothing of the service (it runs beside it, in the `bench` extra's environment):
the factors come in the configuration file. Usage: ``python quix_aggregation.py CONFIG
RESULT``; RESULT gets the readings processed, wall and CPU seconds from the first message
to the last one processed, and the messages written.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from quixstreams import Application
from quixstreams.kafka.configuration import ConnectionConfig

INDICATORS = ("energy_consumed_kwh", "emissions_kgco2e")


def main(config_path: str, result_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    factors: dict[str, float] = config["factors"]
    kwh_per_unit: dict[str, float] = config["kwh_per_unit"]
    expected_messages: int = config["messages"]
    progress: dict[str, Any] = {"readings": 0, "messages": 0, "outputs": 0}

    app = Application(
        # The brokers, the login and the CA, as librdkafka properties.
        broker_address=ConnectionConfig.from_librdkafka_dict(config["kafka"]),
        consumer_group=config["group"],
        auto_offset_reset="earliest",
        state_dir=config["state_dir"],
        loglevel="WARNING",
        on_message_processed=lambda topic, partition, offset: done_one(),
    )
    source = app.topic(config["input_topic"], value_deserializer="json", key_deserializer="str")
    out = app.topic(config["output_topic"], value_serializer="json", key_serializer="str")

    def done_one() -> None:
        progress["messages"] += 1
        if progress["messages"] == expected_messages:
            progress["wall"] = time.monotonic() - progress["t0"]
            progress["cpu"] = time.process_time() - progress["cpu0"]
            app.stop()

    def readings(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if "t0" not in progress:
            progress["t0"], progress["cpu0"] = time.monotonic(), time.process_time()
        progress["readings"] += len(batch)
        rows = []
        for event in batch:
            kwh = event["quantity"] * kwh_per_unit[event["unit"]]
            at = datetime.fromisoformat(event["interval_start"] or event["event_time"])
            rows.append(
                {
                    "series": f"{event['commune']}|{event['sector']}|{event['carrier']}",
                    "kwh": kwh,
                    "co2": kwh * factors[event["carrier"]],
                    "at_ms": int(at.timestamp()) * 1000,  # whole seconds, as our windows
                }
            )
        return rows

    def first(row: dict[str, Any]) -> dict[str, list[float]]:
        return {row["series"]: [row["kwh"], row["co2"]]}

    def add(sums: dict[str, list[float]], row: dict[str, Any]) -> dict[str, list[float]]:
        entry = sums.get(row["series"])
        if entry is None:
            sums[row["series"]] = [row["kwh"], row["co2"]]
        else:
            entry[0] += row["kwh"]
            entry[1] += row["co2"]
        return sums

    def per_series(size: int) -> Any:
        def explode(window: dict[str, Any]) -> list[dict[str, Any]]:
            start = window["start"] // 1000
            rows = []
            for series, (kwh, co2) in window["value"].items():
                commune, sector, carrier = series.split("|")
                dims = {"commune": commune, "sector": sector, "carrier": carrier}
                for indicator, value in zip(INDICATORS, (kwh, co2), strict=True):
                    rows.append({"indicator": indicator, "dimensions": dims, "size": size, "start": start,
                                 "value": value})  # fmt: skip
            progress["outputs"] += len(rows)
            return rows

        return explode

    sdf = app.dataframe(source)
    sdf = sdf.apply(readings, expand=True)
    sdf = sdf.set_timestamp(lambda value, key, timestamp, headers: value["at_ms"])
    for size in config["windows_seconds"]:
        (
            sdf.tumbling_window(size * 1000, grace_ms=config["grace_seconds"] * 1000, name=f"energy-{size}")
            .reduce(reducer=add, initializer=first)
            .final(closing_strategy="partition")
            .apply(per_series(size), expand=True)
            .to_topic(out)
        )
    app.run()
    Path(result_path).write_text(
        json.dumps(
            {
                "readings": progress["readings"],
                "messages": progress["messages"],
                "wall_seconds": progress.get("wall"),
                "cpu_seconds": progress.get("cpu"),
                "outputs": progress["outputs"],
            }
        )
    )
    return 0 if progress["messages"] == expected_messages else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
