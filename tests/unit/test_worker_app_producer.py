"""The worker's faust producer is idempotent (issue 19: Kafka SIGKILLed under load made faust's
producer retry batches the broker had written, and valid readings reached typed topics twice).
faust turns idempotence on only inside transactions; streams/app.py turns it on always."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pydantic import SecretStr

from config.kafka_access import KafkaAccess
from config.settings import Settings
from streams.app import create_app
from zerocarbon.component_configs import worker_config


async def test_the_aiokafka_producer_faust_builds_is_idempotent_with_acks_all(tmp_path: Path) -> None:
    config = replace(
        worker_config(Settings(kafka_worker_password=SecretStr("unit-worker-password"))),
        kafka=KafkaAccess("127.0.0.1:9092"),
        data_dir=tmp_path / "faust",
    )
    app = create_app(config)
    producer = app.producer._new_producer()  # built, never started: no broker is reached
    try:
        assert producer._txn_manager is not None, "aiokafka keeps sequence numbers only when idempotent"
        assert producer._sender._acks == -1
    finally:
        await producer.client.close()
