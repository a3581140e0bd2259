"""Readings are partitioned by commune: the Kafka key of raw and valid records is the
commune's INSEE code, hashed with Kafka's default partitioner (murmur2).

Why the commune: every indicator is broken down by commune, so with all of a commune's
readings on one partition, one partition's state holds the whole of every series and of
every commune-level ratio (renewable share, modal share): results do not depend on how
devices spread over partitions or workers. A device never changes commune, so its
readings keep their order. The cost is skew: La Rochelle weighs about 45 % of the
territory's readings and its partition is handled by one worker at a time.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def commune_partition(commune: str, partitions: int) -> int:
    """The partition of a commune's readings among ``partitions`` (same as a producer keyed by it)."""
    hashed: int = murmur2(commune.encode())
    return (hashed & 0x7FFFFFFF) % partitions
