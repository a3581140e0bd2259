"""A record the broker refuses for its size must not stall the bridge: the idempotent producer
had numbered it, so every later record of its partition was refused as out of order, forever.
The bridge replaces its producer and sends the rest again, in order (issue 19, found by
tests/faults/test_hostile_payloads.py with a reading of 10 MiB less 16 bytes).

The broker here is a stand-in for its sequence check alone: per producer and partition, a
batch must carry the next number; aiokafka numbers a batch before the broker answers.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, OutOfOrderSequenceNumber

from bridge.mqtt_to_kafka import BridgeConfig, MqttToKafkaBridge, Record
from bridge.renewable_producer import RenewableProducer
from config.kafka_access import KafkaAccess

LIMIT = 100  # the broker's message.max.bytes, in this stand-in


class SequencedBroker:
    """What the broker wrote, in order; refuses a batch out of sequence or above LIMIT."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.producers = 0


class IdempotentProducer:
    """As aiokafka's idempotent producer: numbers each record, per partition, once sent."""

    def __init__(self, broker: SequencedBroker) -> None:
        broker.producers += 1
        self.broker = broker
        self.numbered: Counter[tuple[str, int | None]] = Counter()
        self.accepted: Counter[tuple[str, int | None]] = Counter()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    async def send(
        self, topic: str, value: bytes, *, key: bytes | None, partition: int | None, headers: Sequence[object]
    ) -> asyncio.Future[object]:
        tp = (topic, partition)
        sequence = self.numbered[tp]
        self.numbered[tp] += 1
        answer: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if sequence != self.accepted[tp]:
            answer.set_exception(OutOfOrderSequenceNumber())
        elif len(value) > LIMIT:
            answer.set_exception(MessageSizeTooLargeError())
        else:
            self.accepted[tp] += 1
            self.broker.written.append(value)
            answer.set_result(None)
        return answer


def _bridge() -> MqttToKafkaBridge:
    config = BridgeConfig(
        mqtt_host="127.0.0.1", mqtt_port=1, kafka=KafkaAccess("127.0.0.1:1"), client_id="test-renewal",
        status_file=Path("/nonexistent/bridge.status.json"),
    )  # fmt: skip
    return MqttToKafkaBridge(config)


def _record(value: bytes) -> Record:
    return ("zc.raw.energy", 0, None, value, [])


async def test_a_record_refused_for_its_size_leaves_the_records_after_it_written_in_order() -> None:
    broker = SequencedBroker()
    producer = RenewableProducer(lambda: IdempotentProducer(broker))
    await producer.start()
    values = [b"first", b"x" * (LIMIT + 1), b"second", b"third"]
    refused = await asyncio.wait_for(
        _bridge()._send_until_confirmed(producer, [_record(v) for v in values]), 10
    )
    assert [record[3] for record, _ in refused] == [values[1]]
    assert isinstance(refused[0][1], MessageSizeTooLargeError)
    assert broker.written == [b"first", b"second", b"third"]
    assert producer.renewals == 1 and broker.producers == 2
    # And the partition takes records again afterwards.
    assert await _bridge()._send_until_confirmed(producer, [_record(b"fourth")]) == []
    assert broker.written[-1] == b"fourth"


class FlakyProducer:
    """Takes every record at once, but the first ``fail[value]`` attempts at a value time out
    (batches expired in the client while Kafka was away: they may pass later)."""

    def __init__(self, fail: dict[bytes, int]) -> None:
        self.fail = Counter(fail)
        self.written: list[tuple[int | None, bytes]] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(
        self, topic: str, value: bytes, *, key: bytes | None, partition: int | None, headers: Sequence[object]
    ) -> asyncio.Future[object]:
        answer: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if self.fail[value] > 0:
            self.fail[value] -= 1
            answer.set_exception(KafkaTimeoutError())
        else:
            self.written.append((partition, value))
            answer.set_result(None)
        return answer


RECORDS: list[Record] = [
    ("zc.raw.energy", 0, None, b"p0-first", []),
    ("zc.raw.energy", 0, None, b"p0-second", []),
    ("zc.raw.energy", 1, None, b"p1-first", []),
    ("zc.raw.energy", 0, None, b"p0-third", []),
    ("zc.raw.energy", 1, None, b"p1-second", []),
]


async def _send(fail: dict[bytes, int]) -> tuple[FlakyProducer, MqttToKafkaBridge]:
    flaky = FlakyProducer(fail)
    producer = RenewableProducer(lambda: flaky)
    await producer.start()
    bridge = _bridge()
    assert await asyncio.wait_for(bridge._send_until_confirmed(producer, RECORDS), 10) == []
    return flaky, bridge


def _in_partition(flaky: FlakyProducer) -> dict[int, list[bytes]]:
    return {p: [v for q, v in flaky.written if q == p] for p in (0, 1)}


async def test_records_sent_again_keep_their_partition_s_order() -> None:
    """Kafka away: a partition's records from the first that failed all fail; sent again, the
    first of them fails once more. Before, the records sent again went all at once, and the
    second overtook it: a device's later reading reached Kafka first (issue 19)."""
    flaky, bridge = await _send({b"p0-second": 2, b"p0-third": 1})
    assert _in_partition(flaky) == {
        0: [b"p0-first", b"p0-second", b"p0-third"],
        1: [b"p1-first", b"p1-second"],
    }
    assert bridge.counters.overtaken == 0


async def test_a_record_confirmed_after_an_earlier_one_failed_is_counted_out_of_order() -> None:
    """All at once, the first attempt cannot keep a later batch from passing when an earlier
    one expired in the client: it is said, in the status file's ``records_out_of_order``."""
    flaky, bridge = await _send({b"p0-second": 1})
    assert _in_partition(flaky)[0] == [b"p0-first", b"p0-third", b"p0-second"]
    assert bridge.counters.overtaken == 1
