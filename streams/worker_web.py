"""The worker's own HTTP pages (faust's web server; its /table endpoints stay disabled).

``/counters`` needs the worker's token (``Authorization: Bearer``) when one is configured, and
one is whenever the page listens beyond loopback (streams/app.py refuses to start otherwise;
config/web_access.py, docs/security.md). ``/health`` says whether each of the worker's loops
is alive and moving (streams/worker_health.py): 200 for ``pass`` and ``warn``, 503 for
``fail``; it names loops and errors only, so a liveness probe needs no secret. ``/ready``
(open too: booleans only) says whether the worker serves: loops alive, partitions assigned,
caught up on them (streams/worker_metrics.py); 503 naming what fails otherwise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST

from config.prometheus_metrics import exposition, metrics_registry, readiness
from config.web_access import bearer_token, same_secret
from streams.indicators.flush_timings import FlushTimings
from streams.validation.stage import ValidationCounters
from streams.worker_health import WorkerHealth
from streams.worker_metrics import WORKER_METRICS, consumer_lag, worker_readiness, worker_snapshot

UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="zerocarbon-worker"'}


def authorized(headers: Mapping[str, str], token: str | None) -> bool:
    """Whether a request with ``headers`` may read a page that ``token`` guards (None: open)."""
    return token is None or same_secret(bearer_token(headers.get("Authorization")), token)


def register_pages(
    app: faust.App,
    counters: ValidationCounters,
    indicators: Counter[str],
    health: WorkerHealth,
    timings: FlushTimings,
    token: str | None = None,
) -> None:
    """``/counters``: validation counters per producer and reason, and the indicator stage's
    outcomes, to whoever shows ``token``; ``/metrics``: the same and the loops' health for
    Prometheus (streams/worker_metrics.py), to whoever shows ``token``; ``/health``:
    ``health``'s report; ``/ready``: whether it serves."""

    @app.page("/counters")
    async def counters_page(web: View, request: Request) -> Response:
        if not authorized(request.headers, token):
            return web.json(
                {"error": "send the worker's token: Authorization: Bearer <ZC_WORKER_WEB_TOKEN>"},
                status=401,
                headers=dict(UNAUTHORIZED_HEADERS),
            )
        snapshot = counters.snapshot()
        snapshot["balanced"] = counters.balanced()
        snapshot["indicators"] = dict(indicators)
        return web.json(snapshot)

    registry = metrics_registry(
        WORKER_METRICS, lambda: worker_snapshot(counters, indicators, health, consumer_lag(app))
    )
    for collector in timings.collectors():
        registry.register(collector)

    @app.page("/metrics")
    async def metrics_page(web: View, request: Request) -> Response:
        if not authorized(request.headers, token):
            return web.text(
                "send the worker's token: Authorization: Bearer <ZC_WORKER_WEB_TOKEN>\n", status=401
            )
        return web.bytes(exposition(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/ready")
    async def ready_page(web: View, request: Request) -> Response:
        status, body = readiness(worker_readiness(app, health))
        return web.json(body, status=status)

    @app.page("/health")
    async def health_page(web: View, request: Request) -> Response:
        report = health.report()
        return web.json(report, status=503 if report["status"] == "fail" else 200)
