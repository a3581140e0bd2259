"""Who may read the operators' page when it has a token (``ZC_VIEW_TOKEN``; required beyond
loopback, config/web_access.py).

A script or a probe sends ``Authorization: Bearer <token>``. A browser opens the page once as
``/?token=<token>``: the answer sets an HttpOnly, SameSite=Strict cookie holding a value
derived from the token (not the token) and redirects to the same address without it, so the
token leaves the address bar; the page, its assets and its event stream then ride on the
cookie. Changing the token ends every browser's session. ``/health`` stays open, and says no
more than that the page is alive.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from config.web_access import bearer_token, same_secret, session_value

COOKIE = "zc_view_session"
COOKIE_MAX_AGE_SECONDS = 30 * 24 * 3600  # a wall screen keeps it across restarts; a new token ends it
OPEN_PATHS = frozenset({"/health"})
AUTHORIZED: web.RequestKey[bool] = web.RequestKey("authorized", bool)

_REFUSED = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Token needed / Jeton requis</title></head>
<body><main>
<h1>Token needed / Jeton requis</h1>
<p>This page needs its token: open <code>/?token=&lt;ZC_VIEW_TOKEN&gt;</code> once, or send
<code>Authorization: Bearer &lt;ZC_VIEW_TOKEN&gt;</code>.</p>
<p lang="fr">Cette page demande son jeton : ouvrez une fois <code>/?token=&lt;ZC_VIEW_TOKEN&gt;</code>,
ou envoyez <code>Authorization: Bearer &lt;ZC_VIEW_TOKEN&gt;</code>.</p>
</main></body></html>
"""


def _secure(request: web.Request) -> bool:
    """Whether the browser reached us over HTTPS (directly, or through a proxy that says so)."""
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def token_middleware(token: str, security_headers: dict[str, str]) -> Middleware:
    """The middleware that lets through only requests showing ``token`` (or its cookie)."""
    session = session_value(token, "zerocarbon operators' page session")

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        offered = request.query.get("token")
        if offered is not None and request.method == "GET" and request.path == "/":
            if not same_secret(offered, token):
                return _refused(security_headers)
            # Exchange the token for the cookie, and take it out of the address bar.
            response = web.Response(
                status=303,
                headers={
                    **security_headers,
                    "Location": str(request.rel_url.without_query_params("token")),
                    "Cache-Control": "no-store",
                },
            )
            response.set_cookie(
                COOKIE, session, max_age=COOKIE_MAX_AGE_SECONDS, path="/",
                httponly=True, samesite="Strict", secure=_secure(request),
            )  # fmt: skip
            return response
        request[AUTHORIZED] = same_secret(
            bearer_token(request.headers.get("Authorization")), token
        ) or same_secret(request.cookies.get(COOKIE), session)
        if request[AUTHORIZED] or request.path in OPEN_PATHS:
            return await handler(request)
        return _refused(security_headers)

    return require_token


def _refused(security_headers: dict[str, str]) -> web.Response:
    return web.Response(
        status=401,
        text=_REFUSED,
        content_type="text/html",
        headers={
            **security_headers,
            "Cache-Control": "no-store",
            "WWW-Authenticate": 'Bearer realm="zerocarbon-view"',
        },
    )


def authorized(request: web.Request) -> bool:
    """Whether ``request`` showed the token (always, when the page has none)."""
    return request.get(AUTHORIZED, True)
