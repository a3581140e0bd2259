"""The worker's own HTTP pages (faust's web server; its /table endpoints stay disabled)."""

from __future__ import annotations

from collections import Counter

import faust
from faust.web import Request, Response, View

from streams.validation.stage import ValidationCounters


def register_pages(app: faust.App, counters: ValidationCounters, indicators: Counter[str]) -> None:
    """``/counters``: validation counters per producer and reason, and the indicator stage's
    outcomes; ``/health``: liveness."""

    @app.page("/counters")
    async def counters_page(web: View, request: Request) -> Response:
        snapshot = counters.snapshot()
        snapshot["balanced"] = counters.balanced()
        snapshot["indicators"] = dict(indicators)
        return web.json(snapshot)

    @app.page("/health")
    async def health_page(web: View, request: Request) -> Response:
        return web.json({"status": "pass"})
