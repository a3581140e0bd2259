"""Buckets and retention: 1-minute windows expire after a while, the rest is kept long.

The sink creates the buckets it writes to when they are missing and aligns their retention
with the configuration, so an operator changes retention in one place.
"""

from __future__ import annotations

import logging

from influxdb_client import BucketRetentionRules, InfluxDBClient

from sinks.influx_target import InfluxTarget

log = logging.getLogger(__name__)
DAY_SECONDS = 86_400


def bucket_for_window(window: str, target: InfluxTarget) -> str:
    """Where an indicator of this window size lives."""
    return target.minute_bucket if window == "1m" else target.bucket


def retention_plan(target: InfluxTarget) -> dict[str, int]:
    """Bucket -> retention in seconds (0: forever)."""
    return {
        target.bucket: target.retention_days * DAY_SECONDS,
        target.minute_bucket: target.minute_retention_days * DAY_SECONDS,
    }


def ensure_buckets(target: InfluxTarget) -> dict[str, int]:
    """Create missing buckets and update retentions that differ; return the plan applied."""
    plan = retention_plan(target)
    with InfluxDBClient(url=target.url, token=target.token, org=target.org) as client:
        api = client.buckets_api()
        for name, seconds in plan.items():
            rules = [BucketRetentionRules(type="expire", every_seconds=seconds)] if seconds else []
            bucket = api.find_bucket_by_name(name)
            if bucket is None:
                api.create_bucket(bucket_name=name, retention_rules=rules, org=target.org)
                log.info("created bucket %s (retention %s)", name, f"{seconds}s" if seconds else "forever")
                continue
            current = bucket.retention_rules[0].every_seconds if bucket.retention_rules else 0
            if current != seconds:
                bucket.retention_rules = rules
                api.update_bucket(bucket)
                log.info("bucket %s retention %ss -> %ss", name, current, seconds)
    return plan
