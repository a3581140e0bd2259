"""A local HTTP server that plays the sources the collectors poll, from recorded answers.

The answers are the files of tests/recorded_sources/ (their README says where each shape
comes from), with their dates moved to yesterday so that validation, which refuses readings
older than 400 days, judges them as it would live ones. Behaviour a real source has and the
tests need:

- ETag on every answer and 304 to a matching ``If-None-Match`` (conditional requests);
- the Opendatasoft records endpoint answers ``limit``, ``offset``, ``order_by`` and a
  ``where`` of the form ``<field> >= date'<ISO time>'`` over the records it has *published*
  (``published``: the test publishes more between polls), as the Explore API v2.1 does;
- two GBFS snapshots (``gbfs_snapshot``: 1 or 2);
- ``/flaky/<path>``: a 429 with ``Retry-After: 2`` to the first two requests, then the answer;
- ``/broken/500``: always a 500; ``/broken/<name>``: a file of ``failures/`` as a 200;
- ``hold_offset``: an Opendatasoft page at that offset waits until released (a collector
  can be killed in the middle of a poll).

Every request is logged with its time and whether it was conditional.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

RECORDED = Path(__file__).resolve().parents[1] / "recorded_sources"
RECORDED_DAY = date(2026, 12, 6)
ODS_DATASET = "/api/explore/v2.1/catalog/datasets/disponibilite-parkings/records"
_WHERE = re.compile(r"^(\w+) >= date'([^']+)'$")


@dataclass
class Served:
    path: str
    at: float  # time.monotonic() when it arrived
    status: int
    conditional: bool


@dataclass
class SourceServer:
    port: int = 0
    shift_days: int = 0
    published: int = 8  # Opendatasoft records published so far, in date_maj order
    gbfs_snapshot: int = 1
    hold_offset: int | None = None
    log: list[Served] = field(default_factory=list)
    _flaky: dict[str, int] = field(default_factory=dict)
    _release: threading.Event = field(default_factory=threading.Event)

    def body(self, relative: str) -> bytes:
        """A recorded file with its dates moved by ``shift_days`` and ``{PORT}`` filled in."""
        text = (RECORDED / relative).read_text(encoding="utf-8").replace("{PORT}", str(self.port))
        return self.shifted(text).encode()

    def shifted(self, text: str) -> str:
        day = RECORDED_DAY + timedelta(days=self.shift_days)
        text = text.replace(RECORDED_DAY.isoformat(), day.isoformat())
        text = text.replace(RECORDED_DAY.strftime("%Y%m%d"), day.strftime("%Y%m%d"))
        seconds = self.shift_days * 86400
        return re.sub(
            r'("last_(?:reported|updated)":\s*)(\d{9,})', lambda m: f"{m[1]}{int(m[2]) + seconds}", text
        )

    def ods_records(self) -> list[dict[str, Any]]:
        pages = [json.loads(self.body(f"opendatasoft/records.page{n}.json")) for n in (1, 2)]
        return [r for page in pages for r in page["results"]]

    def release(self) -> None:
        self._release.set()

    def requests_to(self, path: str) -> list[Served]:
        return [s for s in self.log if s.path == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        status, body, headers = await self._answer(request)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        conditional = "If-None-Match" in request.headers
        if status == 200:
            headers["ETag"] = etag
            if request.headers.get("If-None-Match") == etag:
                status, body = 304, b""
        self.log.append(Served(path, time.monotonic(), status, conditional))
        return web.Response(status=status, body=body, headers=headers)

    async def _answer(self, request: web.Request) -> tuple[int, bytes, dict[str, str]]:
        path = request.path
        json_type = {"Content-Type": "application/json"}
        if path.startswith("/flaky/"):
            seen = self._flaky.get(path, 0)
            self._flaky[path] = seen + 1
            if seen < 2:
                return 429, b'{"error": "too many requests"}', {**json_type, "Retry-After": "2"}
            path = path.removeprefix("/flaky")
        if path == "/broken/500":
            return 500, b"<html><body>Internal Server Error</body></html>", {"Content-Type": "text/html"}
        if path.startswith("/broken/"):
            return 200, self.body("failures/" + path.removeprefix("/broken/")), json_type
        if path == ODS_DATASET:
            return 200, await self._ods_page(request), json_type
        if path.endswith("/station_status.json") and self.gbfs_snapshot == 2:
            path = path.replace("station_status.json", "station_status.2.json")
        if (RECORDED / path.lstrip("/")).is_file():
            kind = {"Content-Type": "text/csv"} if path.endswith(".csv") else json_type
            return 200, self.body(path.lstrip("/")), kind
        return 404, b'{"error": "not found"}', json_type

    async def _ods_page(self, request: web.Request) -> bytes:
        query = request.query
        limit, offset = int(query.get("limit", "10")), int(query.get("offset", "0"))
        records = self.ods_records()[: self.published]
        if "where" in query:
            match = _WHERE.match(query["where"])
            assert match, f"a where clause this server does not know: {query['where']!r}"
            since = datetime.fromisoformat(match[2])
            records = [r for r in records if datetime.fromisoformat(r[match[1]]) >= since]
        if "order_by" in query:
            records.sort(key=lambda r: datetime.fromisoformat(r[query["order_by"]]).astimezone(UTC))
        if self.hold_offset is not None and offset == self.hold_offset:
            while not self._release.is_set():
                await asyncio.sleep(0.05)
        page = records[offset : offset + limit]
        return json.dumps({"total_count": len(records), "results": page}).encode()


class RunningServer:
    """The server in a thread of its own, so that collectors run as separate processes reach it."""

    def __init__(self, server: SourceServer) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SourceServer:
        self._thread.start()
        assert self._ready.wait(10), "the source server did not start"
        return self.server

    def __exit__(self, *exc: object) -> None:
        self.server.release()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self.server.handle)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.server.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
