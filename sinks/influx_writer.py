"""An asyncio InfluxDB 2 writer bound to the configured org and bucket."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType

import aiohttp
from influxdb_client import Point
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.rest import ApiException

from zerocarbon.settings import Settings

log = logging.getLogger(__name__)


class InfluxWriter:
    """Writes points with influxdb-client's async API; use as ``async with``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: InfluxDBClientAsync | None = None

    async def __aenter__(self) -> InfluxWriter:
        s = self.settings
        self._client = InfluxDBClientAsync(
            url=s.influx_url, token=s.influx_token.get_secret_value(), org=s.influx_org
        )
        return self

    @property
    def is_open(self) -> bool:
        return self._client is not None

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def write(self, points: list[Point]) -> None:
        """Write points; raise influxdb_client's ApiException when InfluxDB refuses them."""
        if self._client is None:
            raise RuntimeError("InfluxWriter used outside `async with`")
        await self._client.write_api().write(bucket=self.settings.influx_bucket, record=points)

    async def write_until_accepted(self, points: list[Point], max_delay: float = 30.0) -> None:
        """Write, retrying with exponential backoff while InfluxDB is unreachable or failing.

        Blocking here holds the stream back, so Kafka offsets are not committed past points
        that are not yet in InfluxDB.
        """
        delay = 0.5
        while True:
            try:
                await self.write(points)
                return
            except ApiException as exc:
                if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                    raise  # InfluxDB refuses these points: retrying cannot help
                log.warning("InfluxDB answered %s; retrying in %.1fs", exc.status, delay)
            except (OSError, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("InfluxDB unreachable (%r); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
