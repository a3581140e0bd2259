"""Buckets and retention: 1-minute windows expire after a while, the rest is kept long.

Setup creates the buckets and aligns their retention with the configuration
(stack/influx_provisioning.py, run by `zerocarbon stack up` and `zerocarbon influx setup`
with the operator token); the sink only writes to them, with a token that may do nothing
else, and refuses itself the points a bucket's retention would drop.
"""

from __future__ import annotations

from sinks.influx_target import InfluxTarget

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
