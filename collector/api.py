"""The operators' query API under `/api/v1` (JSON), its bearer-token check and its audit trail.

`auth_middleware` authenticates every `/api/v1/` call except ingest (agents sign their requests instead),
puts the `Principal` on the request, and writes one audit row per call (who, what, when, from where, with
the status answered), refusals included. Handlers pass the principal's site scope to the store, so a viewer's
queries never read another site's rows; naming another site explicitly is a 403, asking for one of its
devices a 404 (a viewer learns nothing about what exists elsewhere).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from collector.auth import Principal, bearer, hash_token
from collector.keys import METRICS, STORE
from collector.store import AlertFilter, AuditEntry, DeviceFilter, StoreError
from collector.store.base import DEFAULT_LIMIT, DEVICE_SORTS, MAX_LIMIT

log = logging.getLogger("veille.collector.api")
API_PREFIX = "/api/v1/"
INGEST_PATH = "/api/v1/ingest"
PRINCIPAL = web.RequestKey("principal", Principal)
# Top-talkers window when `since` is not given: the last day.
DEFAULT_TALKERS_WINDOW = 86400.0
MAX_TALKERS = 100
# Largest integer a query may carry: SQL BIGINT (both back-ends store sids, seqs and offsets as 64-bit).
MAX_SQL_INT = 2**63 - 1
# Longest query string kept in the audit log (a URL line is at most 8 KiB in aiohttp: max_line_size).
MAX_AUDIT_QUERY = 2048

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json_error(cls: type[web.HTTPException], reason: str, detail: str, **extra: Any) -> web.HTTPException:
    return cls(text=json.dumps({"error": reason, "detail": detail, **extra}), content_type="application/json")


def bad_parameter(name: str, detail: str) -> web.HTTPException:
    """A 400 naming the query parameter that cannot be used."""
    return _json_error(web.HTTPBadRequest, "bad_parameter", detail, field=name)


def principal(request: web.Request) -> Principal:
    """The authenticated caller (set by `auth_middleware`)."""
    who: Principal | None = request.get(PRINCIPAL)
    if who is None:
        raise _json_error(web.HTTPUnauthorized, "unauthorized", "no operator token")
    return who


async def authenticate(request: web.Request) -> Principal | None:
    """The principal of the request's bearer token, None when missing, unknown or revoked."""
    token = bearer(request.headers.get("Authorization"))
    if token is None:
        return None
    record = await request.app[STORE].token_by_hash(hash_token(token))
    if record is None or record.revoked_at is not None:
        return None
    return Principal(record.token_id, record.name, record.role, frozenset(record.sites))


async def write_audit(request: web.Request, who: Principal | None, status: int, detail: str | None = None) -> None:
    """One audit row for this request."""
    entry = AuditEntry(
        ts=time.time(),
        token_id=who.token_id if who else None,
        role=who.role if who else None,
        method=request.method,
        path=request.path,
        query=request.query_string[:MAX_AUDIT_QUERY],
        status=status,
        remote=request.remote,
        detail=detail,
    )
    try:
        await request.app[STORE].audit([entry])
    except StoreError as exc:
        log.error("audit write failed: %s", exc)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate and audit every operator call under /api/v1/; errors there are JSON bodies."""
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    # No store can hold U+0000 (PostgreSQL refuses it): refuse the request, naming where it was.
    if "\x00" in request.path:
        raise _json_error(web.HTTPBadRequest, "bad_request", "NUL character in the path")
    for k, v in request.query.items():
        if "\x00" in k or "\x00" in v:
            raise bad_parameter(k.replace("\x00", "\ufffd"), "NUL character in the query")
    if request.path == INGEST_PATH:
        return await _as_json_errors(handler, request)
    who = await authenticate(request)
    status = 500
    try:
        if who is None:
            raise _json_error(web.HTTPUnauthorized, "unauthorized", "missing, unknown or revoked bearer token")
        request[PRINCIPAL] = who
        response = await _as_json_errors(handler, request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        request.app[METRICS].api.labels(str(status)).inc()
        await write_audit(request, who, status)


async def _as_json_errors(handler: Handler, request: web.Request) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        reason = exc.reason.lower().replace(" ", "_")
        response = web.json_response({"error": reason, "detail": exc.reason}, status=exc.status)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response


# ---- parameter parsing ---------------------------------------------------------------------------------
def _int(request: web.Request, name: str, default: int | None, lo: int = 0, hi: int = MAX_SQL_INT) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_parameter(name, f"expected an integer, got {text[:40]!r}") from None
    if not lo <= value <= hi:
        raise bad_parameter(name, f"must be between {lo} and {hi}")
    return value


def _time(request: web.Request, name: str) -> float | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise bad_parameter(name, f"expected seconds since the epoch, got {text[:40]!r}") from None
    if not 0 <= value < 1e11:
        raise bad_parameter(name, "out of range")
    return value


def _bool(request: web.Request, name: str) -> bool | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise bad_parameter(name, f"expected true or false, got {text[:40]!r}")


def _text(request: web.Request, name: str, max_length: int = 256) -> str | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    if len(text) > max_length:
        raise bad_parameter(name, f"longer than {max_length} characters")
    return text


def _page(request: web.Request) -> tuple[int, int]:
    limit = _int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int(request, "offset", 0, 0)
    assert limit is not None and offset is not None
    return limit, offset


def _site_param(request: web.Request, who: Principal) -> str | None:
    site = _text(request, "site", 64)
    if site is not None and not who.may_read(site):
        raise _json_error(web.HTTPForbidden, "forbidden", f"no access to site {site!r}", field="site")
    return site


def _paged(items: list[dict[str, Any]], total: int, limit: int, offset: int) -> web.Response:
    following = offset + len(items)
    return web.json_response(
        {
            "items": items,
            "total": total,
            "limit": limit,
            "offset": offset,
            "next_offset": following if following < total else None,
        }
    )


# ---- handlers ------------------------------------------------------------------------------------------
async def me(request: web.Request) -> web.Response:
    who = principal(request)
    return web.json_response({"token_id": who.token_id, "name": who.name, "role": who.role, "sites": sorted(who.sites)})


async def sites(request: web.Request) -> web.Response:
    who = principal(request)
    return web.json_response({"items": await request.app[STORE].sites(who.scope)})


async def agents(request: web.Request) -> web.Response:
    who = principal(request)
    site = _site_param(request, who)
    rows = await request.app[STORE].list_agents(who.scope)
    if site is not None:
        rows = [r for r in rows if r["site"] == site]
    return web.json_response({"items": rows})


async def agent_health(request: web.Request) -> web.Response:
    who = principal(request)
    store = request.app[STORE]
    agent = await store.get_agent(request.match_info["agent_id"])
    if agent is None or not who.may_read(agent.site):
        raise _json_error(web.HTTPNotFound, "not_found", "no such agent")
    since = _time(request, "since") or time.time() - DEFAULT_TALKERS_WINDOW
    limit, _ = _page(request)
    return web.json_response({"items": await store.health_series(agent.agent_id, since, limit)})


async def devices(request: web.Request) -> web.Response:
    who = principal(request)
    limit, offset = _page(request)
    sort = request.query.get("sort", "last_seen")
    if sort not in DEVICE_SORTS:
        raise bad_parameter("sort", f"expected one of {', '.join(DEVICE_SORTS)}")
    flt = DeviceFilter(
        site=_site_param(request, who),
        device_type=_text(request, "type", 64),
        vendor=_text(request, "vendor"),
        os=_text(request, "os", 64),
        randomized=_bool(request, "randomized"),
        since=_time(request, "since"),
        q=_text(request, "q"),
        sort=sort,
        limit=limit,
        offset=offset,
    )
    items, total = await request.app[STORE].devices(flt, who.scope)
    return _paged(items, total, limit, offset)


async def device(request: web.Request) -> web.Response:
    who = principal(request)
    site, mac = request.match_info["site"], request.match_info["mac"]
    found = await request.app[STORE].device(site, mac) if who.may_read(site) else None
    if found is None:
        raise _json_error(web.HTTPNotFound, "not_found", "no such device")
    return web.json_response(found)


async def alerts(request: web.Request) -> web.Response:
    who = principal(request)
    limit, offset = _page(request)
    flt = AlertFilter(
        site=_site_param(request, who),
        sid=_int(request, "sid", None, 0),
        severity=_int(request, "severity", None, 1, 255),
        since=_time(request, "since"),
        until=_time(request, "until"),
        mac=_text(request, "mac", 64),
        limit=limit,
        offset=offset,
    )
    items, total = await request.app[STORE].alerts(flt, who.scope)
    return _paged(items, total, limit, offset)


async def top_talkers(request: web.Request) -> web.Response:
    who = principal(request)
    site = request.match_info["site"]
    if not who.may_read(site):
        raise _json_error(web.HTTPForbidden, "forbidden", f"no access to site {site!r}", field="site")
    since = _time(request, "since")
    limit = _int(request, "limit", 10, 1, MAX_TALKERS)
    assert limit is not None
    window_start = since if since is not None else time.time() - DEFAULT_TALKERS_WINDOW
    rows = await request.app[STORE].top_talkers(site, window_start, limit)
    return web.json_response({"site": site, "since": window_start, "items": rows})


async def audit_log(request: web.Request) -> web.Response:
    who = principal(request)
    if not who.is_admin:
        raise _json_error(web.HTTPForbidden, "forbidden", "the audit log is for admins")
    limit, offset = _page(request)
    rows = await request.app[STORE].audit_log(
        since=_time(request, "since"), token_id=_text(request, "token_id", 64), limit=limit, offset=offset
    )
    return web.json_response({"items": rows, "limit": limit, "offset": offset})


def add_routes(app: web.Application) -> None:
    """Register the query API."""
    app.router.add_get("/api/v1/me", me)
    app.router.add_get("/api/v1/sites", sites)
    app.router.add_get("/api/v1/agents", agents)
    app.router.add_get("/api/v1/agents/{agent_id}/health", agent_health)
    app.router.add_get("/api/v1/devices", devices)
    app.router.add_get("/api/v1/devices/{site}/{mac}", device)
    app.router.add_get("/api/v1/alerts", alerts)
    app.router.add_get("/api/v1/sites/{site}/top-talkers", top_talkers)
    app.router.add_get("/api/v1/audit", audit_log)
