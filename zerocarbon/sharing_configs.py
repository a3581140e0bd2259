"""The sharing stage's and `zerocarbon agreements`' configurations, built from the settings
(beside zerocarbon/component_configs.py, which maps the other components')."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from config.settings import Settings
from schemas import kafka_principals
from zerocarbon.component_configs import (
    kafka_access,
    metrics_endpoint,
    missing_kafka_password,
    required_kafka_access,
)

if TYPE_CHECKING:
    from sharing.share_stage import ShareConfig
    from zerocarbon.agreements_command import AgreementsConfig


def known_indicators() -> frozenset[str]:
    """Every indicator an agreement may target: the worker's and the territory's."""
    from sinks.territory_rollup import OURS
    from streams.indicators.catalogue import INDICATORS

    return frozenset({*INDICATORS, *OURS})


def pseudonym_key_file(settings: Settings) -> Path:
    return settings.pseudonym_key_file or settings.stack_home / "sharing" / "pseudonym-keys.json"


def share_config(settings: Settings) -> ShareConfig:
    """`zerocarbon share`'s: the sharer principal, its group, the pseudonyms' key."""
    from sharing.share_stage import ShareConfig

    return ShareConfig(
        kafka=required_kafka_access(settings, kafka_principals.SHARER),
        group=settings.sharing_group,
        key_file=pseudonym_key_file(settings),
        indicators=known_indicators(),
        metrics=metrics_endpoint(settings, settings.sharing_metrics_port, "sharing"),
    )


def agreements_config(settings: Settings) -> AgreementsConfig:
    """`zerocarbon agreements`': the admin's access when known (check needs none)."""
    from zerocarbon.agreements_command import AgreementsConfig

    missing = missing_kafka_password(settings, kafka_principals.ADMIN)
    return AgreementsConfig(
        admin=None if missing else kafka_access(settings, kafka_principals.ADMIN),
        indicators=known_indicators(),
        key_file=pseudonym_key_file(settings),
        partitions=settings.kafka_partitions,
        replication=settings.kafka_replication,
        time_zone=settings.time_zone,
    )
