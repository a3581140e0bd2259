"""The page's server with its sources replaced: snapshots reach the browser as server-sent
events, the sources are polled only while someone watches (idle cost: nothing), and the
server answers nothing but reads."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from config.settings import Settings
from operators_view.server import create_app
from zerocarbon.component_configs import view_config

# Whether or not a local stack generated Kafka passwords here: the page's feed never reaches Kafka.
VIEW_KAFKA = SecretStr("unit-view-password")


class CountingSource:
    """A snapshot source that counts how it is used."""

    def __init__(self) -> None:
        self.opened = self.closed = self.built = 0

    async def open(self) -> None:
        self.opened += 1

    async def snapshot(self) -> dict[str, Any]:
        self.built += 1
        return {"generated_at": "2026-03-10T00:00:00+00:00", "n": self.built}

    async def close(self) -> None:
        self.closed += 1


async def first_snapshot(client: TestClient) -> tuple[Any, dict[str, Any]]:
    response = await client.get("/events")
    assert response.headers["Content-Type"].startswith("text/event-stream")
    while True:
        line = (await asyncio.wait_for(response.content.readline(), 5)).decode()
        if line.startswith("data: "):
            return response, json.loads(line.removeprefix("data: "))


async def wait_for(condition: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_sources_are_polled_only_while_a_browser_watches() -> None:
    source = CountingSource()
    config = view_config(Settings(view_refresh_seconds=0.5, kafka_view_password=VIEW_KAFKA))
    async with TestClient(TestServer(create_app(config, source))) as client:
        await asyncio.sleep(1.2)
        assert (source.opened, source.built) == (0, 0)  # nobody watching: nothing polled

        response, snapshot = await first_snapshot(client)
        assert snapshot["n"] >= 1 and source.opened == 1
        second = await first_snapshot(client)  # a second browser shares the same refresh loop
        await wait_for(lambda: source.built >= 3)
        assert source.opened == 1

        response.close()
        second[0].close()
        await wait_for(lambda: source.closed == 1)
        built = source.built
        await asyncio.sleep(1.2)
        assert source.built == built  # idle again: not one more poll

        again, snapshot = await first_snapshot(client)  # and it starts again on demand
        assert source.opened == 2 and snapshot["n"] > built
        again.close()


async def test_the_server_only_reads() -> None:
    config = view_config(Settings(kafka_view_password=VIEW_KAFKA))
    async with TestClient(TestServer(create_app(config, CountingSource()))) as client:
        page = await client.get("/?lang=en")
        assert page.status == 200 and '<html lang="en">' in await page.text()
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        assert (await client.get("/static/view.js")).status == 200
        assert (await client.get("/static/view.css")).status == 200
        assert (await client.get("/static/index.html")).status == 404  # the template is not served
        assert (await client.get("/table/anything")).status == 404
        for method in ("POST", "PUT", "DELETE"):
            assert (await client.request(method, "/")).status == 405
            assert (await client.request(method, "/events")).status == 405
        assert (await (await client.get("/health")).json())["watchers"] == 0
