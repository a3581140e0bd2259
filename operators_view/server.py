"""`zerocarbon view`: the aiohttp application that serves the operators' page, its assets and
its live feed. Read-only: GET routes only, and no raw data (no table, no payload) is exposed.
On loopback by default; anywhere else only with a token (operators_view/page_access.py)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from config.web_access import require_token_beyond_loopback
from operators_view.i18n import negotiate
from operators_view.live_feed import LiveFeed, SnapshotSource
from operators_view.page import STATIC_DIR, rendered_pages
from operators_view.page_access import authorized, token_middleware
from operators_view.page_snapshot import PageSnapshots
from operators_view.view_config import ViewConfig

log = logging.getLogger("zerocarbon.view")

FEED: web.AppKey[LiveFeed] = web.AppKey("feed", LiveFeed)
PAGES: web.AppKey[dict[str, str]] = web.AppKey("pages", dict)
ASSET_BODIES: web.AppKey[dict[str, bytes]] = web.AppKey("assets", dict)
ASSETS = {"view.css": "text/css", "view.js": "text/javascript"}

# Everything the page loads comes from this server: no CDN, it works with no internet.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
KEEPALIVE_SECONDS = 15.0


async def index(request: web.Request) -> web.Response:
    lang = negotiate(request.query.get("lang"), request.headers.get("Accept-Language"))
    return web.Response(
        text=request.app[PAGES][lang],
        content_type="text/html",
        headers={
            **SECURITY_HEADERS,
            "Cache-Control": "no-cache",
            "Content-Language": lang,
            "Vary": "Accept-Language",
        },
    )


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``snapshot`` events with the page's figures, as long as the browser stays."""
    response = web.StreamResponse(
        headers={
            **SECURITY_HEADERS,
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    await response.write(b"retry: 3000\n\n")
    feed = request.app[FEED]
    try:
        async with feed.watch() as snapshots:
            while True:
                try:
                    snapshot = await asyncio.wait_for(snapshots.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")  # also how a gone browser is noticed
                    continue
                if snapshot is None:
                    break
                await response.write(f"event: snapshot\ndata: {snapshot}\n\n".encode())
    except (ConnectionResetError, ConnectionError):
        pass  # the browser went away: leaving the `watch` block is all there is to do
    return response


async def health(request: web.Request) -> web.Response:
    """Liveness, open to all; how many browsers watch only for whoever may read the page."""
    if not authorized(request):
        return web.json_response({"status": "pass"})
    return web.json_response({"status": "pass", "watchers": request.app[FEED].watchers})


async def asset(request: web.Request) -> web.Response:
    """The page's script and style sheet (the only files served: the template is not)."""
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return web.Response(
        body=request.app[ASSET_BODIES][name],
        content_type=ASSETS[name],
        charset="utf-8",
        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
    )


def create_app(config: ViewConfig, source: SnapshotSource | None = None) -> web.Application:
    """The page's application; ``source`` replaces the real sources (tests). Refused
    (WebAccessRefused) beyond loopback with no token."""
    require_token_beyond_loopback(
        config.host, config.token, page="the operators' page", setting="ZC_VIEW_TOKEN"
    )
    middlewares = [token_middleware(config.token, SECURITY_HEADERS)] if config.token is not None else []
    app = web.Application(middlewares=middlewares)
    app[FEED] = LiveFeed(source or PageSnapshots(config), config.refresh_seconds)
    app[PAGES] = rendered_pages()
    app[ASSET_BODIES] = {name: (STATIC_DIR / name).read_bytes() for name in ASSETS}
    app.router.add_get("/", index)
    app.router.add_get("/events", events)
    app.router.add_get("/health", health)
    app.router.add_get("/static/{name}", asset)

    async def stop_feed(app: web.Application) -> None:
        await app[FEED].close()

    app.on_shutdown.append(stop_feed)
    return app


async def serve(config: ViewConfig, stop: asyncio.Event) -> None:
    """Serve the page on its host and port until ``stop`` is set."""
    runner = web.AppRunner(create_app(config), shutdown_timeout=3.0, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    log.info("operators' view ready: http://%s:%d/", config.host, config.port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
