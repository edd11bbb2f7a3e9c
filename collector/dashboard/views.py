"""The dashboard's pages: overview, devices, one device, alerts, agents; login and logout.

Each page handler reads through the store's query methods (or `queries` for counts and groups) with the
principal's site scope, so a viewer's pages are built only from their sites' rows; another site's device
is a 404 like a device that does not exist. Query parameters are parsed leniently (a bad value falls back
to the default and is reported on the page) because they come from links and forms, not scripts.
"""

from __future__ import annotations

import math
import time
from typing import Any, Final
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from collector.api import write_audit
from collector.auth import MAX_TOKEN_LENGTH, Principal
from collector.dashboard import charts, queries
from collector.dashboard.session import (
    LOGIN_CSRF_COOKIE,
    PRINCIPAL,
    check_csrf,
    clear_session,
    csrf_for,
    new_login_csrf,
    page,
    principal_for,
    safe_next,
    same_origin,
    session_token,
    set_login_csrf,
    set_session,
    with_headers,
)
from collector.keys import STORE
from collector.store import AlertFilter, DeviceFilter
from collector.store.base import DEVICE_SORTS

JINJA: Final = web.AppKey("dashboard_jinja", jinja2.Environment)
FACETS: Final = web.AppKey("dashboard_facets", queries.FacetCache)
# Rows per page of the devices and alerts tables: one screen of a laptop.
PAGE_SIZE: Final = 50
# An agent that has not sent a batch for this long is shown offline: the shipper closes a batch at least
# every 5 s (telemetry.config DEFAULT_BATCH_MAX_AGE) and a health event comes every minute, so 10 min of
# silence is a dead sensor or a cut link, not a quiet network.
OFFLINE_AFTER: Final = 600.0
# Lag (batch created -> received) above this is highlighted: more than one batch age plus retries.
LAG_WARN: Final = 60.0
# Time windows a chart or list can show, seconds.
WINDOWS: Final = {"1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}
DEFAULT_WINDOW: Final = "24h"
# Buckets of the alerts-over-time chart, and its size in CSS pixels (the page is at most 1600 px wide).
CHART_BUCKETS: Final = 24
CHART_WIDTH: Final = 1100.0
CHART_HEIGHT: Final = 170.0
# Longest text accepted from a filter field (as the API's `_text` default).
MAX_FILTER_TEXT: Final = 256


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """Render a template with the common context (principal, CSRF value, current path)."""
    token = session_token(request)
    env = request.app[JINJA]
    text = env.get_template(template).render(
        who=request.get(PRINCIPAL),
        csrf=csrf_for(token) if token else "",
        path=request.path,
        **context,
    )
    return web.Response(text=text, content_type="text/html", charset="utf-8", status=status)


def _text(request: web.Request, name: str, notes: list[str], max_length: int = MAX_FILTER_TEXT) -> str | None:
    value = request.query.get(name, "").strip()
    if not value:
        return None
    if len(value) > max_length:
        notes.append(f"{name}: longer than {max_length} characters, ignored")
        return None
    if not printable(value):
        notes.append(f"{name}: control characters are not searchable, ignored")
        return None
    return value


def printable(text: str) -> bool:
    """False when the text holds a control character (NUL cannot even be stored in PostgreSQL text)."""
    return not any(ord(c) < 32 or ord(c) == 127 for c in text)


def _int(request: web.Request, name: str, notes: list[str], lo: int, hi: int) -> int | None:
    value = request.query.get(name, "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        notes.append(f"{name}: {value[:40]!r} is not a number, ignored")
        return None
    if not lo <= number <= hi:
        notes.append(f"{name}: must be between {lo} and {hi}, ignored")
        return None
    return number


def _window(request: web.Request, notes: list[str], allow_all: bool = False) -> str:
    value = request.query.get("window", DEFAULT_WINDOW)
    if value in WINDOWS or (allow_all and value == "all"):
        return value
    notes.append(f"window: {value[:20]!r} is not one of {', '.join(WINDOWS)}, showing {DEFAULT_WINDOW}")
    return DEFAULT_WINDOW


def _site(request: web.Request, who: Principal, notes: list[str]) -> str | None:
    site = _text(request, "site", notes, 64)
    if site is not None and not who.may_read(site):
        page_ = render(
            request, "error.html", title="No access to this site", message=f"Your token does not cover {site}."
        )
        raise web.HTTPForbidden(text=page_.text, content_type="text/html")
    return site


async def _anchor(request: web.Request, who: Principal, now: float) -> tuple[float, float | None]:
    """End of the time windows: now, or the newest data when nothing arrived in the last day (a replay)."""
    latest = await queries.latest_activity(request.app[STORE], who.scope)
    if latest is not None and latest < now - WINDOWS["24h"]:
        return latest, latest
    return now, None


def _link(path: str, params: dict[str, Any], **changes: Any) -> str:
    merged = {**params, **changes}
    clean = {k: v for k, v in merged.items() if v not in (None, "", False)}
    return f"{path}?{urlencode(clean)}" if clean else path


# ---- login --------------------------------------------------------------------------------------------
async def login_form(request: web.Request) -> web.StreamResponse:
    """The login form (and a fresh CSRF cookie for it); a visitor with a session goes on to `next`."""
    who = await principal_for(request, session_token(request))
    if who is not None:
        await write_audit(request, who, 303, "dashboard login form: already logged in")
        raise with_headers(web.HTTPSeeOther(safe_next(request.query.get("next"))))
    await write_audit(request, None, 200, "dashboard login form")
    return await _login_page(request, None, 200)


async def _login_page(request: web.Request, error: str | None, status: int, target: str | None = None) -> web.Response:
    value = new_login_csrf()
    target = safe_next(target if target is not None else request.query.get("next"))
    response = render(request, "login.html", status=status, error=error, next=target, login_csrf=value)
    set_login_csrf(response, request, value)
    with_headers(response)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    """Check the token, start a session, go where the visitor was heading."""
    if not same_origin(request):
        await write_audit(request, None, 403, "dashboard login: cross-origin form")
        raise with_headers(web.HTTPForbidden(text="cross-origin form refused"))
    form = await request.post()
    target = form.get("next")
    target = target if isinstance(target, str) else None
    if not check_csrf(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")):
        await write_audit(request, None, 403, "dashboard login: bad CSRF value")
        return await _login_page(request, "The form expired; please try again.", 403, target)
    token = form.get("token")
    token = token.strip() if isinstance(token, str) else ""
    who = await principal_for(request, token) if 0 < len(token) <= MAX_TOKEN_LENGTH else None
    if who is None:
        await write_audit(request, None, 401, "dashboard login: unknown or revoked token")
        return await _login_page(request, "Unknown or revoked token.", 401, target)
    response = web.HTTPSeeOther(safe_next(target))
    set_session(response, request, token)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    await write_audit(request, who, 303, "dashboard login")
    raise with_headers(response)


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session (POST with the session's CSRF value)."""
    token = session_token(request)
    who = await principal_for(request, token)
    form = await request.post()
    if not same_origin(request) or token is None or not check_csrf(csrf_for(token), form.get("csrf")):
        await write_audit(request, who, 403, "dashboard logout: bad CSRF value or origin")
        raise with_headers(web.HTTPForbidden(text="logout form refused"))
    response = web.HTTPSeeOther("/login")
    clear_session(response)
    await write_audit(request, who, 303, "dashboard logout")
    raise with_headers(response)


# ---- overview -----------------------------------------------------------------------------------------
def agent_flags(agent: dict[str, Any], now: float) -> list[str]:
    """What is wrong with an agent, in words (empty when healthy)."""
    flags: list[str] = []
    if agent.get("revoked_at"):
        flags.append("revoked")
    since = agent.get("since_last_seen")
    if since is None:
        flags.append("never reported")
    elif since > OFFLINE_AFTER:
        flags.append("offline")
    health = agent.get("health") or {}
    drops = int(health.get("drops_kernel", 0)) + int(health.get("drops_pipeline", 0))
    if drops:
        flags.append(f"{drops} packets dropped")
    lag = agent.get("lag")
    if lag is not None and lag > LAG_WARN:
        flags.append(f"lag {lag:.0f} s")
    if agent.get("rejected"):
        flags.append(f"{agent['rejected']} batches rejected")
    if health.get("batches_spooled"):
        flags.append(f"{health['batches_spooled']} batches spooled")
    shed = health.get("shed") or {}
    if isinstance(shed, dict) and any(shed.values()):
        flags.append(f"shed {sum(int(v) for v in shed.values())} events")
    flags.extend(str(a) for a in (health.get("alarms") or []))
    return flags


@page
async def overview(request: web.Request, who: Principal) -> web.StreamResponse:
    """Sites, agents online/offline, devices by type, new devices, alerts over time, unhealthy agents."""
    store = request.app[STORE]
    notes: list[str] = []
    window = _window(request, notes)
    now = time.time()
    end, replayed = await _anchor(request, who, now)
    span = WINDOWS[window]
    bucket = span / CHART_BUCKETS
    start = math.floor((end - span) / bucket) * bucket + bucket
    agents = await store.list_agents(who.scope, now)
    for agent in agents:
        agent["flags"] = agent_flags(agent, now)
        agent["online"] = agent["since_last_seen"] is not None and agent["since_last_seen"] <= OFFLINE_AFTER
    sites = await store.sites(who.scope)
    for site in sites:
        mine = [a for a in agents if a["site"] == site["site"] and not a["revoked_at"]]
        site["online"] = sum(1 for a in mine if a["online"])
        site["offline"] = len(mine) - site["online"]
    types = await queries.device_types(store, who.scope)
    day_start = end - end % 86400
    series = await queries.severity_buckets(store, who.scope, start, bucket, CHART_BUCKETS)
    return render(
        request,
        "overview.html",
        notes=notes,
        window=window,
        windows=list(WINDOWS),
        replayed=replayed,
        sites=sites,
        agents=agents,
        troubled=[a for a in agents if a["flags"]],
        types=charts.bar_chart(types),
        device_total=sum(n for _, n in types),
        new_today=await queries.new_devices(store, who.scope, day_start, day_start + 86400),
        day_start=day_start,
        alerts_chart=charts.stacked_columns(series, start, bucket, width=CHART_WIDTH, height=CHART_HEIGHT),
        alerts_total=sum(sum(v) for v in series.values()),
    )


# ---- devices ------------------------------------------------------------------------------------------
@page
async def devices(request: web.Request, who: Principal) -> web.StreamResponse:
    """Searchable, filterable, sortable, paginated device table (all on the server)."""
    store = request.app[STORE]
    notes: list[str] = []
    sort = request.query.get("sort", "last_seen")
    if sort not in DEVICE_SORTS:
        notes.append(f"sort: {sort[:20]!r} is not a column, sorted by last seen")
        sort = "last_seen"
    randomized_text = request.query.get("randomized", "")
    randomized = {"yes": True, "no": False}.get(randomized_text)
    params: dict[str, Any] = {
        "q": _text(request, "q", notes),
        "site": _site(request, who, notes),
        "type": _text(request, "type", notes, 64),
        "vendor": _text(request, "vendor", notes),
        "os": _text(request, "os", notes, 64),
        "randomized": randomized_text if randomized is not None else None,
        "sort": sort if sort != "last_seen" else None,
    }
    page_no = _int(request, "page", notes, 1, 10**7) or 1
    flt = DeviceFilter(
        site=params["site"],
        device_type=params["type"],
        vendor=params["vendor"],
        os=params["os"],
        randomized=randomized,
        q=params["q"],
        sort=sort,
        limit=PAGE_SIZE,
        offset=(page_no - 1) * PAGE_SIZE,
    )
    items, total = await store.devices(flt, who.scope)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    return render(
        request,
        "devices.html",
        notes=notes,
        items=items,
        total=total,
        page_no=page_no,
        pages=pages,
        first=flt.offset + 1 if items else 0,
        last=flt.offset + len(items),
        params=params,
        sort=sort,
        sorts=list(DEVICE_SORTS),
        sites=await queries.site_names(store, who.scope),
        facets=await request.app[FACETS].get(store, who.scope, time.monotonic()),
        link=lambda **changes: _link("/devices", params, **changes),
    )


# Which evidence keys speak for each conclusion (the inventory's `suggests` names, docs/events.md).
_CONCLUSIONS: Final = (
    ("device type", "device_type", ("device_type",)),
    ("OS", "os", ("os_family", "os")),
    ("vendor", "vendor", ("vendor",)),
)


def _agrees(suggested: str, concluded: str) -> bool:
    a, b = suggested.casefold().strip(), concluded.casefold().strip()
    return a == b or a.startswith(b) or b.startswith(a)


def explain(device: dict[str, Any]) -> list[dict[str, Any]]:
    """For each conclusion (type, OS, vendor): the evidence that backs it, what contradicts it, total weight."""
    out = []
    for label, column, keys in _CONCLUSIONS:
        value = device.get(column)
        if not value:
            continue
        backing: list[dict[str, Any]] = []
        against: list[dict[str, Any]] = []
        for item in device.get("evidence", []):
            suggests = item.get("suggests") or {}
            suggested = next((suggests[k] for k in keys if suggests.get(k)), None)
            if suggested is None:
                continue
            (backing if _agrees(str(suggested), str(value)) else against).append(item)
        out.append(
            {
                "label": label,
                "value": value,
                "backing": backing,
                "against": against,
                "weight": sum((float(i.get("weight") or 0) for i in backing), 0.0),
            }
        )
    return out


@page
async def device(request: web.Request, who: Principal) -> web.StreamResponse:
    """One device: conclusions and the evidence behind them, names, IPs, fingerprints, alerts."""
    site, mac = request.match_info["site"], request.match_info["mac"]
    readable = who.may_read(site) and printable(site) and printable(mac)
    found = await request.app[STORE].device(site, mac) if readable else None
    if found is None:
        return render(request, "error.html", status=404, title="No such device", message=f"{mac} at {site}")
    fingerprints = sorted((found.get("fingerprints") or {}).items())
    return render(
        request,
        "device.html",
        d=found,
        reasons=explain(found),
        timeline=sorted(found.get("evidence", []), key=lambda e: (e.get("first_seen") or 0, e.get("source") or "")),
        fingerprints=fingerprints,
    )


# ---- alerts -------------------------------------------------------------------------------------------
@page
async def alerts(request: web.Request, who: Principal) -> web.StreamResponse:
    """Alerts grouped by signature; with `sid`, the alerts of that signature with their flow and device."""
    store = request.app[STORE]
    notes: list[str] = []
    window = request.query.get("window", "all")
    if window != "all" and window not in WINDOWS:
        notes.append(f"window: {window[:20]!r} is not one of all, {', '.join(WINDOWS)}; showing all")
        window = "all"
    now = time.time()
    end, replayed = await _anchor(request, who, now)
    since = end - WINDOWS[window] if window in WINDOWS else None
    until = end + 1 if window in WINDOWS else None
    params: dict[str, Any] = {
        "site": _site(request, who, notes),
        "severity": _int(request, "severity", notes, 1, 255),
        "sid": _int(request, "sid", notes, 0, 2**32),
        "mac": _text(request, "mac", notes, 64),
        "window": window if window != "all" else None,
    }
    groups = await queries.alert_groups(
        store, who.scope, params["site"], params["severity"], since, until, params["mac"]
    )
    items: list[dict[str, Any]] = []
    total = 0
    page_no = _int(request, "page", notes, 1, 10**7) or 1
    known: set[tuple[str, str]] = set()
    targets: dict[tuple[str, str], str] = {}
    if params["sid"] is not None or params["mac"] is not None:
        flt = AlertFilter(
            site=params["site"],
            sid=params["sid"],
            severity=params["severity"],
            since=since,
            until=until,
            mac=params["mac"],
            limit=PAGE_SIZE,
            offset=(page_no - 1) * PAGE_SIZE,
        )
        items, total = await store.alerts(flt, who.scope)
        known = await queries.known_devices(store, [(a["site"], a["src_mac"]) for a in items if a["src_mac"]])
        for site in {a["site"] for a in items}:
            dsts = sorted({a["dst"] for a in items if a["site"] == site and a["dst"]})
            for ip, mac in (await queries.devices_by_ip(store, site, dsts)).items():
                targets[(site, ip)] = mac
    return render(
        request,
        "alerts.html",
        notes=notes,
        replayed=replayed,
        groups=groups,
        items=items,
        total=total,
        page_no=page_no,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
        known=known,
        targets=targets,
        params=params,
        window=window,
        windows=["all", *WINDOWS],
        sites=await queries.site_names(store, who.scope),
        link=lambda **changes: _link("/alerts", params, **changes),
    )


# ---- agents -------------------------------------------------------------------------------------------
def health_charts(samples: list[dict[str, Any]]) -> dict[str, charts.LineChart]:
    """Line charts of one agent's health series: packets/s, drops, spool, CPU, RSS."""

    def col(name: str, scale: float = 1.0) -> list[tuple[float, float]]:
        return [(float(s["ts"]), float(s[name] or 0) / scale) for s in samples]

    return {
        "packets/s": charts.line_chart(charts.rates(col("packets"))),
        "drops per report": charts.line_chart(charts.deltas(col("drops"))),
        "spool (KiB)": charts.line_chart(col("spool_bytes", 1024.0)),
        "CPU (%)": charts.line_chart(col("cpu")),
        "RSS (MiB)": charts.line_chart(col("rss", 1024.0 * 1024.0)),
    }


@page
async def agents(request: web.Request, who: Principal) -> web.StreamResponse:
    """Every agent in scope with version, last seen, problems and health charts over the window."""
    store = request.app[STORE]
    notes: list[str] = []
    window = _window(request, notes)
    now = time.time()
    site = _site(request, who, notes)
    rows = [a for a in await store.list_agents(who.scope, now) if site is None or a["site"] == site]
    for agent in rows:
        agent["flags"] = agent_flags(agent, now)
        agent["online"] = agent["since_last_seen"] is not None and agent["since_last_seen"] <= OFFLINE_AFTER
        last = await store.fetch("SELECT MAX(ts) AS t FROM health WHERE agent_id = ?", [agent["agent_id"]])
        newest = last[0]["t"] if last and last[0]["t"] is not None else now
        samples = await store.health_series(agent["agent_id"], min(now, float(newest)) - WINDOWS[window])
        agent["charts"] = health_charts(samples)
        agent["samples"] = len(samples)
    return render(
        request,
        "agents.html",
        notes=notes,
        agents=rows,
        window=window,
        windows=list(WINDOWS),
        site=site,
        sites=await queries.site_names(store, who.scope),
    )
