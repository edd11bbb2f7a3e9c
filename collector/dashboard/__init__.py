"""The operators' web dashboard, served by the collector under `/` (docs/dashboard.md).

Server-rendered HTML (jinja2, autoescape on for every template) over the same store queries and site
scopes as the `/api/v1` API, charts as inline SVG computed in `charts`, one small stylesheet and no script
from anywhere: pages work with JavaScript off and the Content-Security-Policy allows only the collector
itself. Sessions, CSRF and the per-view audit rows are in `session`; pages in `views`; the few extra SQL
queries in `queries`. `setup_dashboard(app)` registers it all on a collector application.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from collector.dashboard import charts, queries, views
from collector.dashboard.session import SECURITY_HEADERS
from collector.keys import CONFIG

STATIC = Path(__file__).with_name("static")
TEMPLATES = Path(__file__).with_name("templates")


def fmt_time(value: Any, with_date: bool = True) -> str:
    """Seconds since the epoch as UTC text; `-` for none."""
    if value is None or value == "":
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S", time.gmtime(float(value)))


def fmt_short(value: Any) -> str:
    """Seconds since the epoch as UTC date and minute (table cells)."""
    if value is None or value == "":
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(float(value)))


def fmt_span(first: Any, last: Any) -> str:
    """`2026-09-07 07:30 → 07:54` (the day once when both ends share it), UTC."""
    start, end = fmt_short(first), fmt_short(last)
    if start[:10] == end[:10] and start != "-":
        return f"{start} → {end[11:]}"
    return f"{start} → {end}"


def fmt_ago(seconds: Any) -> str:
    """A duration in the largest sensible unit (`42 s`, `7 min`, `3 h`, `12 d`)."""
    if seconds is None:
        return "never"
    s = float(seconds)
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= size:
            return f"{s / size:.0f} {unit}"
    return f"{max(s, 0):.0f} s"


def fmt_bytes(value: Any) -> str:
    """Bytes in binary units."""
    n = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def fmt_number(value: Any) -> str:
    """An integer with thin thousands separators; floats with up to two decimals."""
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}".replace(",", "\u202f")
    return f"{int(value):,}".replace(",", "\u202f")


def device_url(site: str, mac: str) -> str:
    """Path of a device page; each part quoted whole (a site name may hold `/`, `?` or non-ASCII)."""
    return f"/devices/{quote(str(site), safe='')}/{quote(str(mac), safe='')}"


def make_environment() -> jinja2.Environment:
    """The template environment: package templates, autoescape everywhere, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=fmt_time,
        short=fmt_short,
        span=fmt_span,
        ago=fmt_ago,
        bytes=fmt_bytes,
        number=fmt_number,
        sevname=charts.severity_name,
    )
    env.globals.update(sevcolour=charts.severity_colour, device_url=device_url)
    return env


async def _static_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/static/"):
        for name, value in SECURITY_HEADERS.items():
            if name != "Cache-Control":
                response.headers.setdefault(name, value)


def setup_dashboard(app: web.Application) -> None:
    """Register the dashboard's pages and static files on a collector application (unless turned off)."""
    if CONFIG in app and not app[CONFIG].dashboard:
        return
    env = make_environment()
    env.globals["asset"] = lambda name: str(app.router["static"].url_for(filename=name))
    app[views.JINJA] = env
    app[views.FACETS] = queries.FacetCache()
    app.on_response_prepare.append(_static_headers)
    app.router.add_get("/", views.overview, name="overview")
    app.router.add_get("/login", views.login_form, name="login")
    app.router.add_post("/login", views.login)
    app.router.add_post("/logout", views.logout, name="logout")
    app.router.add_get("/devices", views.devices, name="devices")
    app.router.add_get("/devices/{site}/{mac}", views.device, name="device")
    app.router.add_get("/alerts", views.alerts, name="alerts")
    app.router.add_get("/agents", views.agents, name="agents")
    app.router.add_static("/static/", STATIC, name="static", append_version=True)
