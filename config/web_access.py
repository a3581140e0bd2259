"""Who may read the service's HTTP pages (the operators' page, the worker's `/counters`).

On loopback, anyone on the machine: the default, and what `make demo` runs. Bound to any other
address, only a client that shows the page's token (``Authorization: Bearer <token>``; the
operators' page also takes it once as ``?token=``, docs/operators-view.md), and a page bound
there without a token refuses to start, naming the setting to set (docs/security.md).
Tokens are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


class WebAccessRefused(ValueError):
    """A page would listen beyond loopback with no token: nobody should read it by accident."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; false for any other name or address, and for
    ``0.0.0.0``, ``::`` and the empty host (every interface)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # another host name: it may resolve to any interface
        return False


def require_token_beyond_loopback(host: str, token: str | None, *, page: str, setting: str) -> None:
    """Refuse to serve ``page`` on ``host`` beyond loopback without a token; say what to set."""
    if token is None and not is_loopback(host):
        raise WebAccessRefused(
            f"{page} would listen on {host!r}, beyond loopback, with no token: anyone who can reach "
            f"that address could read it. Set {setting} to a long random secret (for example the "
            "output of `python -c 'import secrets; print(secrets.token_urlsafe(32))'`), or listen "
            "on 127.0.0.1 behind a reverse proxy that authenticates (docs/security.md)"
        )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def same_secret(presented: str | None, expected: str) -> bool:
    """Whether ``presented`` is ``expected``, in time that does not depend on where they differ."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def session_value(token: str, purpose: str) -> str:
    """What a browser keeps instead of the token itself (an HttpOnly cookie): derived from it, so
    changing the token ends every session, and the token never sits in the cookie jar."""
    return hmac.new(token.encode(), purpose.encode(), hashlib.sha256).hexdigest()
