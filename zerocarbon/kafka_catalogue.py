"""The catalogue's Kafka topics, declared by the admin: no service may create a topic.

`zerocarbon stack up` and `make demo` (which starts the stack itself) both call this once the
brokers serve; a Kafka of one's own gets them from `zerocarbon kafka setup`.
"""

from __future__ import annotations

import asyncio

from config.settings import Settings
from schemas.kafka_principals import ADMIN
from streams.kafka_admin import catalogue, ensure_topics
from zerocarbon.component_configs import required_kafka_access


def declare_catalogue(settings: Settings) -> list[str]:
    """Create the catalogue's missing topics (and align their configuration); the names created."""
    admin = required_kafka_access(settings, ADMIN)
    created = asyncio.run(
        ensure_topics(admin, catalogue(settings.kafka_partitions), settings.kafka_replication)
    )
    if created:
        print(f"[stack] created Kafka topics {', '.join(created)}", flush=True)
    return created
