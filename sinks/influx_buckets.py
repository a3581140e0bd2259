"""Buckets and retention: 1-minute windows expire after a while, the rest is kept long.

The sink creates the buckets it writes to when they are missing and aligns their retention
with the configuration, so an operator changes retention in one place.
"""

from __future__ import annotations

import logging

from influxdb_client import BucketRetentionRules, InfluxDBClient

from config.settings import Settings

log = logging.getLogger(__name__)
DAY_SECONDS = 86_400


def bucket_for_window(window: str, settings: Settings) -> str:
    """Where an indicator of this window size lives."""
    return settings.influx_minute_bucket if window == "1m" else settings.influx_bucket


def retention_plan(settings: Settings) -> dict[str, int]:
    """Bucket -> retention in seconds (0: forever)."""
    return {
        settings.influx_bucket: settings.influx_retention_days * DAY_SECONDS,
        settings.influx_minute_bucket: settings.influx_minute_retention_days * DAY_SECONDS,
    }


def ensure_buckets(settings: Settings) -> dict[str, int]:
    """Create missing buckets and update retentions that differ; return the plan applied."""
    plan = retention_plan(settings)
    with InfluxDBClient(
        url=settings.influx_url, token=settings.influx_token.get_secret_value(), org=settings.influx_org
    ) as client:
        api = client.buckets_api()
        for name, seconds in plan.items():
            rules = [BucketRetentionRules(type="expire", every_seconds=seconds)] if seconds else []
            bucket = api.find_bucket_by_name(name)
            if bucket is None:
                api.create_bucket(bucket_name=name, retention_rules=rules, org=settings.influx_org)
                log.info("created bucket %s (retention %s)", name, f"{seconds}s" if seconds else "forever")
                continue
            current = bucket.retention_rules[0].every_seconds if bucket.retention_rules else 0
            if current != seconds:
                bucket.retention_rules = rules
                api.update_bucket(bucket)
                log.info("bucket %s retention %ss -> %ss", name, current, seconds)
    return plan
