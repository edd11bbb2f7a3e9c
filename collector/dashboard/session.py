"""Dashboard sessions: an operator token in an HttpOnly cookie, CSRF tokens, and the audited page wrapper.

The cookie holds the operator token itself (HttpOnly, SameSite=Strict, Secure under TLS, limited lifetime),
so any collector behind a load balancer can serve the session and a revoked token stops working on the next
click: every request looks the token up by its hash, as the API does for `Authorization: Bearer`.
State-changing forms (login, logout) are POSTs that must carry a CSRF value (logout: an HMAC of the session
token; login: a random value also set as a cookie, "double submit") and, when the browser sends one, an
`Origin` equal to the collector's own. `page(handler)` wraps every page: it resolves the principal, sends
anonymous visitors to the login form, and writes one audit row per view (who, path, query, status).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar
from urllib.parse import quote

from aiohttp import web

from collector.api import write_audit
from collector.auth import MAX_TOKEN_LENGTH, Principal, hash_token
from collector.keys import CONFIG, STORE

SESSION_COOKIE: Final = "veille_session"
LOGIN_CSRF_COOKIE: Final = "veille_login_csrf"
# A working day plus margin: the analyst logs in once per shift; the token itself may live much longer.
SESSION_SECONDS: Final = 10 * 3600
# The login form's CSRF cookie only has to outlive filling in one form.
LOGIN_CSRF_SECONDS: Final = 3600
# 16 random bytes (128 bits) for the login CSRF value: unguessable, short in a form field.
CSRF_BYTES: Final = 16
_CSRF_LABEL: Final = b"veille-dashboard-csrf-v1"

R = TypeVar("R", bound=web.StreamResponse)
PRINCIPAL: Final = web.RequestKey("dashboard_principal", Principal)
PageHandler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]

# Sent with every dashboard response: no inline script, nothing loaded from anywhere but the collector.
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def csrf_for(token: str) -> str:
    """The CSRF value bound to a session token (an HMAC of it: nothing to store server-side)."""
    return hmac.new(token.encode("utf-8"), _CSRF_LABEL, hashlib.sha256).hexdigest()


def session_token(request: web.Request) -> str | None:
    """The operator token of the session cookie, None when absent or implausible."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return token


async def principal_for(request: web.Request, token: str | None) -> Principal | None:
    """The principal of an operator token; None when unknown or revoked."""
    if token is None or len(token) > MAX_TOKEN_LENGTH:
        return None
    record = await request.app[STORE].token_by_hash(hash_token(token))
    if record is None or record.revoked_at is not None:
        return None
    return Principal(record.token_id, record.name, record.role, frozenset(record.sites))


def is_secure(request: web.Request) -> bool:
    """True when the browser reaches us over HTTPS (directly or through the configured public URL)."""
    return request.secure or request.app[CONFIG].url.startswith("https://")


def set_session(response: web.StreamResponse, request: web.Request, token: str) -> None:
    """Attach the session cookie."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=is_secure(request),
    )


def clear_session(response: web.StreamResponse) -> None:
    """Expire the session cookie."""
    response.del_cookie(SESSION_COOKIE, path="/")


def new_login_csrf() -> str:
    """A fresh random value for the login form's hidden field and its cookie."""
    return secrets.token_urlsafe(CSRF_BYTES)


def set_login_csrf(response: web.StreamResponse, request: web.Request, value: str) -> None:
    """Set the login form's CSRF cookie (compared with the form field on POST: double submit)."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        max_age=LOGIN_CSRF_SECONDS,
        path="/login",
        httponly=True,
        samesite="Strict",
        secure=is_secure(request),
    )


def same_origin(request: web.Request) -> bool:
    """False when the browser says the form came from another origin (the `Origin` header)."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return origin == f"{request.scheme}://{request.host}" or origin == request.app[CONFIG].url


def check_csrf(expected: str | None, given: object) -> bool:
    """Constant-time comparison of a CSRF value from a form with the expected one."""
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(expected or "", given)


def safe_next(target: str | None) -> str:
    """A local path to return to after login (never another host: no `//`, no scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target[:2048]


def with_headers(response: R) -> R:
    """Add the dashboard's security headers."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def page(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap a page handler: require a session, audit the view, add the security headers."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        who = await principal_for(request, session_token(request))
        if who is None:
            target = safe_next(request.path_qs)
            response = web.HTTPSeeOther(f"/login?next={quote(target, safe='/')}")
            clear = SESSION_COOKIE in request.cookies
            if clear:
                clear_session(response)
            await write_audit(request, None, response.status, "dashboard: no valid session")
            raise with_headers(response)
        request[PRINCIPAL] = who
        status = 500
        try:
            result = await handler(request, who)
            status = result.status
            return with_headers(result)
        except web.HTTPException as exc:
            status = exc.status
            with_headers(exc)
            raise
        finally:
            await write_audit(request, who, status, "dashboard")

    return wrapped
