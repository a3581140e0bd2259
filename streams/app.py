"""The faust application, built from the worker's own config (`streams/worker_config.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from config.kafka_access import KafkaAccess
from config.kafka_cluster import faust_broker_urls
from config.web_access import require_token_beyond_loopback
from schemas.catalogue import DEAD_LETTER_MAX_BYTES
from streams.worker_config import WorkerConfig


def create_app(config: WorkerConfig) -> faust.App:
    """A faust app on the configured Kafka, with faust's raw-table web endpoints off; refused
    (WebAccessRefused) when its page would listen beyond loopback with no token."""
    require_token_beyond_loopback(
        config.web_host, config.web_token, page="the worker's page", setting="ZC_WORKER_WEB_TOKEN"
    )
    datadir = config.data_dir
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        config.worker_id,
        broker=faust_broker_urls(config.kafka.bootstrap),
        broker_credentials=faust_credentials(config.kafka),
        # No faust table: the indicator state is checkpointed to Kafka by the agent itself
        # (streams/indicators/checkpoints.py), so no RocksDB store either.
        store="memory://",
        datadir=str(datadir),
        topic_partitions=config.partitions,
        topic_replication_factor=config.replication,
        consumer_auto_offset_reset="earliest",
        # Static membership (KIP-345) only when asked for: a static member that rejoins with
        # another set of topics (a new version of the worker) gets its previous assignment
        # back, and aiokafka then fails on "assignment for unsubscribed topic" (seen here).
        consumer_group_instance_id=config.instance_id,
        producer_acks=-1,
        # A stop does not wait for every record read to be acknowledged: the indicator stage
        # acknowledges only what a checkpoint covers, so the wait could last minutes under a
        # backlog (issue 19: SIGTERM ignored for 80 s). The stop checkpoints instead
        # (streams/indicators/agent.py), and what is not acknowledged is read again.
        stream_wait_empty=False,
        # A dead worker's partitions move after this, not after faust's 60 s default.
        broker_session_timeout=config.session_timeout_seconds,
        broker_heartbeat_interval=max(1.0, config.session_timeout_seconds / 5),
        producer_max_request_size=DEAD_LETTER_MAX_BYTES,
        # faust's web server carries only our pages (streams/worker_web.py); its built-in
        # endpoints, and above all /table exposing raw state, stay off.
        web_enabled=True,
        web_bind=config.web_host,
        web_port=config.web_port,
        web_host=config.web_host,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_router_enabled=False,
        web_metrics_enabled=False,
    )
    app.transport = IdempotentTransport(app.conf.broker_consumer, app)
    return app


class IdempotentProducer(faust_aiokafka.Producer):
    """faust's producer with Kafka's idempotence on, as every other producer of ours has.

    faust turns it on only inside transactions (``_settings_extra``); without it a batch
    retried after a broker died between writing and acknowledging it is written twice
    (issue 19: Kafka SIGKILLed under load, valid readings repeated on typed topics with
    no worker restarted). The broker keeps each producer's sequence numbers across its
    restarts, so the retry is recognised and dropped.
    """

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class IdempotentTransport(faust_aiokafka.Transport):
    """faust's aiokafka transport, creating ``IdempotentProducer``s."""

    Producer = IdempotentProducer


def faust_credentials(kafka: KafkaAccess) -> faust.SASLCredentials | None:
    """The worker's login, as faust hands it to each of its aiokafka clients."""
    if kafka.username is None:
        return None
    return faust.SASLCredentials(
        username=kafka.username,
        password=kafka.password,
        ssl_context=kafka.ssl_context(),
        mechanism=kafka.mechanism,
    )


def bytes_topic(app: faust.App, *names: str, partitions: int | None = None) -> faust.TopicT:
    """A topic (or several) whose keys and values we encode ourselves: faust passes bytes."""
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )
