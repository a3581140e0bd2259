"""Write line protocol to InfluxDB 2, telling "InfluxDB is away" apart from "this point is bad".

influxdb-client's async API sends each chunk (gzip optional). Failures split in two:
- InfluxDB unreachable, overloaded (429/5xx) or misconfigured (401/403/404): nothing is
  lost, the caller keeps the points and retries later (``InfluxUnavailable``, with the
  server's Retry-After when it sent one);
- InfluxDB refuses points (400/413/422): the chunk is bisected until the refused lines are
  isolated, and those come back as ``Rejected`` with InfluxDB's message, for the
  dead-letter topic. Accepted halves may be written twice; points are idempotent.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from types import TracebackType

import aiohttp
from influxdb_client import WritePrecision
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.rest import ApiException

from zerocarbon.settings import Settings

REFUSED_STATUSES = frozenset({400, 413, 422})


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


def _message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "{}")
        return str(body.get("message") or exc.reason or exc.status)
    except (ValueError, AttributeError):
        return str(exc.body or exc.reason or exc.status)


def _retry_after(exc: ApiException) -> float | None:
    headers: dict[str, str] = dict(exc.headers or {})
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class InfluxLineWriter:
    """Writes chunks of line protocol (precision: seconds); use as ``async with``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: InfluxDBClientAsync | None = None

    async def __aenter__(self) -> InfluxLineWriter:
        s = self.settings
        self._client = InfluxDBClientAsync(
            url=s.influx_url,
            token=s.influx_token.get_secret_value(),
            org=s.influx_org,
            enable_gzip=s.sink_gzip,
            timeout=int(s.sink_request_timeout_seconds * 1000),
        )
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def write(self, bucket: str, lines: list[str]) -> list[Rejected]:
        """Write ``lines`` in chunks of the configured batch size; return the refused ones."""
        rejected: list[Rejected] = []
        size = self.settings.sink_batch_size
        for start in range(0, len(lines), size):
            rejected += await self._write_chunk(bucket, lines[start : start + size])
        return rejected

    async def _write_chunk(self, bucket: str, lines: list[str]) -> list[Rejected]:
        if self._client is None:
            raise RuntimeError("InfluxLineWriter used outside `async with`")
        try:
            await self._client.write_api().write(
                bucket=bucket,
                record="\n".join(lines),
                write_precision=WritePrecision.S,  # type: ignore[arg-type]
            )
            return []
        except ApiException as exc:
            status = int(exc.status or 0)
            if status not in REFUSED_STATUSES:
                hint = {
                    401: "the token is refused: check ZC_INFLUX_TOKEN",
                    403: "the token may not write this bucket",
                    404: f"bucket {bucket!r} or org {self.settings.influx_org!r} does not exist",
                }.get(status, "")
                raise InfluxUnavailable(
                    f"InfluxDB answered {status} {_message(exc)} {hint}".strip(), _retry_after(exc)
                ) from exc
            if len(lines) == 1:
                return [Rejected(bucket, lines[0], status, _message(exc))]
            middle = len(lines) // 2
            return await self._write_chunk(bucket, lines[:middle]) + await self._write_chunk(
                bucket, lines[middle:]
            )
        except (OSError, aiohttp.ClientError, TimeoutError) as exc:
            raise InfluxUnavailable(f"InfluxDB unreachable at {self.settings.influx_url}: {exc!r}") from exc
