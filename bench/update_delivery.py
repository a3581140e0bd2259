"""Indicator updates handed to Kafka: the worker's flush delivery (``UpdateProducer``) alone.

A backfill soak's profile put about a third of the worker's CPU in delivering indicator
updates (building each Kafka record's send, aiokafka's sender): a flush there carried 22 000
to 26 000 updates. This measures that path on the isolated stack's Kafka (SASL_SSL, as the
worker): ``--flushes`` flushes of ``--updates-per-flush`` updates (real ``IndicatorUpdate``
records: 28 communes x 6 sectors x 4 carriers, hourly windows) delivered to a fresh topic of
the catalogue's partition count, each flush waited for as the worker waits. Reports updates
per CPU-second of this process (the worker's cost) and per wall-second, saved in
bench/results/update-delivery-<UTC time>.json. The topic is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid

from bench_topics import admin_access, create_topic, delete_topics
from machine import describe
from results_file import report
from sink_throughput import updates

from config.settings import Settings
from schemas.indicator import series_key
from streams.indicators.update_producer import UpdateProducer


async def run(flushes: int, per_flush: int) -> dict[str, object]:
    settings = Settings()
    topic = f"zc.bench.updates-{uuid.uuid4().hex[:8]}"
    await create_topic(settings, topic)
    records = [(series_key(u), u.model_dump_json(by_alias=True).encode()) for u in updates(per_flush)]
    producer = UpdateProducer(admin_access(settings), topic)
    try:
        await producer.deliver(records[:100])  # connected, metadata known: not timed
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(flushes):
            await producer.deliver(records)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await producer.stop()
        await delete_topics(settings, [topic])
    delivered = flushes * per_flush
    return {
        "updates": delivered,
        "updates_per_flush": per_flush,
        "bytes_per_update": round(sum(len(k) + len(v) for k, v in records) / len(records), 1),
        "updates_per_cpu_second": round(delivered / cpu),
        "updates_per_second": round(delivered / wall),
        "cpu_seconds": round(cpu, 3),
        "machine": describe(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--flushes", type=int, default=20, help="flushes (default %(default)s)")
    parser.add_argument(
        "--updates-per-flush", type=int, default=25_000, help="updates per flush (default %(default)s)"
    )
    args = parser.parse_args()
    result = asyncio.run(run(args.flushes, args.updates_per_flush))
    report("update-delivery", result, 24)
    return 0


if __name__ == "__main__":
    from stack import isolated_stack

    isolated_stack.enter()  # the benchmarks' own stack instance, never one a person runs
    sys.exit(main())
