"""Write line protocol to InfluxDB 2, telling "InfluxDB is away" apart from "this point is bad".

Plain aiohttp POSTs to ``/api/v2/write``, gzip optional at ``GZIP_LEVEL``: influxdb-client's
async write API compresses at level 9 on the event loop (bench/README.md, "Sink").
Failures split in two:
- InfluxDB unreachable, overloaded (429/5xx) or misconfigured (401/403/404): nothing is
  lost, the caller keeps the points and retries later (``InfluxUnavailable``, with the
  server's Retry-After when it sent one);
- InfluxDB refuses points (400/413/422): the chunk is bisected until the refused lines are
  isolated, and those come back as ``Rejected`` with InfluxDB's message, for the
  dead-letter topic. Accepted halves may be written twice; points are idempotent.
"""

from __future__ import annotations

import json
import logging
import random
import time
import zlib
from dataclasses import dataclass
from types import TracebackType

import aiohttp

from sinks.influx_buckets import retention_plan
from sinks.sink_config import SinkConfig

log = logging.getLogger(__name__)
REFUSED_STATUSES = frozenset({400, 413, 422})
# Level 1: most of level 9's size gain (a 5 000-point body: 696 kB -> 40 kB, level 9: 31 kB)
# at a seventh of its CPU, which the sink shares with parsing on one core.
GZIP_LEVEL = 1


def gzipped(body: bytes) -> bytes:
    """A gzip member of ``body`` at ``GZIP_LEVEL`` (what ``Content-Encoding: gzip`` expects)."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 16 + 15: gzip framing
    return compressor.compress(body) + compressor.flush()


@dataclass(frozen=True)
class Rejected:
    bucket: str
    line: str
    status: int
    message: str


class InfluxUnavailable(Exception):
    """InfluxDB did not take the points, through no fault of theirs: keep them, retry later."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter (half fixed, half random); the server's Retry-After wins."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap)
    ceiling = min(cap, base * 2**attempt)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _message(body: str, reason: str | None, status: int) -> str:
    try:
        return str(json.loads(body or "{}").get("message") or reason or status)
    except (ValueError, AttributeError):
        return body or reason or str(status)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


PER_SECOND = {"s": 1, "ms": 1_000}


def split_by_retention(
    bucket: str, lines: list[str], retention_seconds: int, now: float, precision: str = "s"
) -> tuple[list[str], list[Rejected]]:
    """The lines a bucket with this retention keeps, and the others refused with the reason."""
    if not retention_seconds:
        return lines, []
    oldest = (now - retention_seconds) * PER_SECOND[precision]
    kept: list[str] = []
    refused: list[Rejected] = []
    for line in lines:
        if int(line.rsplit(" ", 1)[1]) >= oldest:
            kept.append(line)
        else:
            days = retention_seconds // 86_400
            message = f"older than the {days}-day retention of bucket {bucket!r}: InfluxDB would drop it"
            refused.append(Rejected(bucket, line, 422, message))
    return kept, refused


class InfluxLineWriter:
    """Writes chunks of line protocol (timestamps in ``precision``: s or ms); use as ``async with``."""

    def __init__(self, config: SinkConfig, precision: str = "s") -> None:
        if precision not in PER_SECOND:
            raise ValueError(f"precision {precision!r}: use one of {sorted(PER_SECOND)}")
        self.config = config
        self.precision = precision
        self._session: aiohttp.ClientSession | None = None
        self._url = f"{config.influx.url}/api/v2/write"
        self._headers = {
            "Authorization": f"Token {config.influx.token}",
            "Content-Type": "text/plain; charset=utf-8",
        }
        if config.gzip:
            self._headers["Content-Encoding"] = "gzip"

    async def __aenter__(self) -> InfluxLineWriter:
        timeout = aiohttp.ClientTimeout(total=self.config.request_timeout_seconds)
        self._session = aiohttp.ClientSession(timeout=timeout, headers=self._headers)
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def write(self, bucket: str, lines: list[str]) -> list[Rejected]:
        """Write ``lines`` in chunks of the configured batch size; return the refused ones.

        Points older than the bucket's retention are refused here, without a request: InfluxDB
        would refuse each (422) and bisecting a batch of them costs two requests per point."""
        lines, rejected = split_by_retention(
            bucket, lines, retention_plan(self.config.influx).get(bucket, 0), time.time(), self.precision
        )
        size = self.config.batch_size
        for start in range(0, len(lines), size):
            rejected += await self._write_chunk(bucket, lines[start : start + size])
        return rejected

    async def _write_chunk(self, bucket: str, lines: list[str]) -> list[Rejected]:
        if self._session is None:
            raise RuntimeError("InfluxLineWriter used outside `async with`")
        body = "\n".join(lines).encode()
        params = {"org": self.config.influx.org, "bucket": bucket, "precision": self.precision}
        try:
            async with self._session.post(
                self._url, params=params, data=gzipped(body) if self.config.gzip else body
            ) as response:
                if response.status == 204:
                    return []
                status = response.status
                message = _message(await response.text(), response.reason, status)
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except (OSError, aiohttp.ClientError, TimeoutError) as exc:
            raise InfluxUnavailable(f"InfluxDB unreachable at {self.config.influx.url}: {exc!r}") from exc
        if status not in REFUSED_STATUSES:
            hint = {
                401: "the token is refused: check ZC_INFLUX_SINK_TOKEN (or its file, docs/security.md)",
                403: "the sink's token may not write this bucket: run `zerocarbon influx setup` again",
                404: f"bucket {bucket!r} or org {self.config.influx.org!r} does not exist: setup creates "
                "the buckets (`zerocarbon stack up`, `zerocarbon influx setup`)",
            }.get(status, "")
            raise InfluxUnavailable(f"InfluxDB answered {status} {message} {hint}".strip(), retry_after)
        if len(lines) == 1:
            return [Rejected(bucket, lines[0], status, message)]
        middle = len(lines) // 2
        return await self._write_chunk(bucket, lines[:middle]) + await self._write_chunk(
            bucket, lines[middle:]
        )
