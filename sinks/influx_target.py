"""Where the indicators live in InfluxDB: the server, its organisation and the two buckets.

All that reading indicators back (the demo, the operators' page, the tests) needs, and what
the sink writes to; the CLI builds it from the settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class InfluxTarget:
    url: str  # http://host:port
    token: str = field(repr=False)  # never in a log or a printed config
    org: str
    bucket: str  # every window but 1m
    minute_bucket: str  # the 1-minute windows
    retention_days: int  # of ``bucket``; 0: forever
    minute_retention_days: int
