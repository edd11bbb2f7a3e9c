"""Read queries the dashboard needs beyond the store's API (counts, facets, time buckets, groups).

Written once with `?` placeholders and run through `SqlStore.fetch`, which renders them for SQLite or
PostgreSQL; no dialect-specific functions (time buckets are `SUM(CASE ...)` columns, exact on both). Every
query takes the caller's site scope and applies it in SQL, as the store's own queries do, and every result
is bounded (`LIMIT`, or a fixed number of buckets).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from collector.store import Scope, SqlStore

Row = dict[str, Any]
# Distinct values offered in a filter's drop-down; a site with more vendors than this uses the text search.
MAX_FACET_VALUES: Final = 200
# Signature groups listed at once (a rule set of a few thousand rules rarely fires more than a few dozen).
MAX_ALERT_GROUPS: Final = 200
# Distinct destination addresses looked up as devices on one alerts page (one page: PAGE_SIZE alerts).
MAX_IP_LOOKUPS: Final = 50
# Facets are three GROUP BY scans of the inventory; a minute-old list of vendors is fine for a drop-down.
FACET_TTL: Final = 60.0
# Distinct scopes cached (one per viewer site set); cleared whole when exceeded.
MAX_CACHED_SCOPES: Final = 256
# Buckets of a time chart: one per hour of a day, fine enough for a week at ~6 h each.
MAX_BUCKETS: Final = 48


def scope_clause(scope: Scope, column: str = "site") -> tuple[str, list[Any]]:
    """` AND column IN (...)` for a viewer's sites, nothing for all sites, never-true for no site."""
    if scope is None:
        return "", []
    if not scope:
        return " AND 1 = 0", []
    return f" AND {column} IN ({', '.join('?' for _ in scope)})", sorted(scope)


def _site(site: str | None, column: str = "site") -> tuple[str, list[Any]]:
    return (f" AND {column} = ?", [site]) if site is not None else ("", [])


async def device_types(store: SqlStore, scope: Scope, site: str | None = None) -> list[tuple[str, int]]:
    """Devices per type (None as `unknown`), largest first."""
    clause, params = scope_clause(scope)
    s_clause, s_params = _site(site)
    rows = await store.fetch(
        f"SELECT device_type, COUNT(*) AS n FROM devices WHERE 1 = 1{clause}{s_clause} "
        "GROUP BY device_type ORDER BY n DESC, device_type LIMIT ?",
        [*params, *s_params, MAX_FACET_VALUES],
    )
    return [(r["device_type"] or "unknown", int(r["n"])) for r in rows]


async def facets(store: SqlStore, scope: Scope) -> dict[str, list[str]]:
    """Values for the device filters: types, vendors and OS families present in scope, most common first."""
    clause, params = scope_clause(scope)
    out: dict[str, list[str]] = {}
    for name, column in (("type", "device_type"), ("vendor", "vendor"), ("os", "os")):
        rows = await store.fetch(
            f"SELECT {column} AS v, COUNT(*) AS n FROM devices WHERE {column} IS NOT NULL{clause} "
            f"GROUP BY {column} ORDER BY n DESC, {column} LIMIT ?",
            [*params, MAX_FACET_VALUES],
        )
        out[name] = sorted(str(r["v"]) for r in rows)
    return out


async def new_devices(store: SqlStore, scope: Scope, since: float, until: float) -> int:
    """Devices first seen in [since, until)."""
    clause, params = scope_clause(scope)
    rows = await store.fetch(
        f"SELECT COUNT(*) AS n FROM devices WHERE first_seen >= ? AND first_seen < ?{clause}",
        [since, until, *params],
    )
    return int(rows[0]["n"])


async def latest_activity(store: SqlStore, scope: Scope) -> float | None:
    """Time of the newest device sighting or alert in scope (event time, not arrival time)."""
    clause, params = scope_clause(scope)
    devices = await store.fetch(f"SELECT MAX(last_seen) AS t FROM devices WHERE 1 = 1{clause}", params)
    alerts = await store.fetch(f"SELECT MAX(ts) AS t FROM alerts WHERE 1 = 1{clause}", params)
    times = [float(r[0]["t"]) for r in (devices, alerts) if r and r[0]["t"] is not None]
    return max(times) if times else None


async def severity_buckets(
    store: SqlStore, scope: Scope, start: float, width: float, count: int, site: str | None = None
) -> dict[int, list[int]]:
    """Alerts per severity in `count` buckets of `width` seconds from `start`: {severity: [n, ...]}."""
    count = max(1, min(count, MAX_BUCKETS))
    clause, params = scope_clause(scope)
    s_clause, s_params = _site(site)
    columns = ", ".join(f"SUM(CASE WHEN ts >= ? AND ts < ? THEN 1 ELSE 0 END) AS b{i}" for i in range(count))
    bounds: list[Any] = []
    for i in range(count):
        bounds += [start + i * width, start + (i + 1) * width]
    rows = await store.fetch(
        f"SELECT severity, {columns} FROM alerts WHERE ts >= ? AND ts < ?{clause}{s_clause} GROUP BY severity",
        [*bounds, start, start + count * width, *params, *s_params],
    )
    return {int(r["severity"]): [int(r[f"b{i}"] or 0) for i in range(count)] for r in rows}


async def alert_groups(
    store: SqlStore,
    scope: Scope,
    site: str | None = None,
    severity: int | None = None,
    since: float | None = None,
    until: float | None = None,
    mac: str | None = None,
) -> list[Row]:
    """Alerts grouped by signature (gid, sid, msg): count, worst severity, first/last, devices and sites."""
    clause, params = scope_clause(scope)
    where = f"WHERE 1 = 1{clause}"
    for column, op, value in (
        ("site", "=", site),
        ("severity", "=", severity),
        ("ts", ">=", since),
        ("ts", "<", until),
        ("src_mac", "=", mac),
    ):
        if value is not None:
            where += f" AND {column} {op} ?"
            params.append(value)
    rows = await store.fetch(
        "SELECT gid, sid, msg, MIN(severity) AS severity, MAX(classtype) AS classtype, COUNT(*) AS n, "
        "MIN(ts) AS first_ts, MAX(ts) AS last_ts, COUNT(DISTINCT src_mac) AS devices, "
        f"COUNT(DISTINCT site) AS sites FROM alerts {where} GROUP BY gid, sid, msg "
        "ORDER BY severity, n DESC, sid LIMIT ?",
        [*params, MAX_ALERT_GROUPS],
    )
    return rows


async def known_devices(store: SqlStore, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (site, mac) pairs are in the inventory (to link alerts to device pages)."""
    found: set[tuple[str, str]] = set()
    by_site: dict[str, set[str]] = {}
    for site, mac in pairs:
        by_site.setdefault(site, set()).add(mac)
    for site, macs in by_site.items():
        ordered = sorted(macs)
        marks = ", ".join("?" for _ in ordered)
        rows = await store.fetch(f"SELECT mac FROM devices WHERE site = ? AND mac IN ({marks})", [site, *ordered])
        found.update((site, r["mac"]) for r in rows)
    return found


async def devices_by_ip(store: SqlStore, site: str, ips: Sequence[str]) -> dict[str, str]:
    """MAC of the device of `site` that holds each address (one scan of the site's devices for all of them)."""
    wanted = sorted(set(ips))[:MAX_IP_LOOKUPS]
    if not wanted:
        return {}
    # ips are stored as a JSON list of strings: match the quoted address.
    likes = " OR ".join("ips {like} ?" for _ in wanted)
    rows = await store.fetch(
        f"SELECT mac, ips, last_seen FROM devices WHERE site = ? AND ({likes}) ORDER BY last_seen",
        [site, *(f'%"{ip}"%' for ip in wanted)],
    )
    out: dict[str, str] = {}
    for row in rows:  # oldest first: the most recent holder of an address wins
        held = row["ips"] if isinstance(row["ips"], str) else ""
        for ip in wanted:
            if f'"{ip}"' in held:
                out[ip] = row["mac"]
    return out


async def site_names(store: SqlStore, scope: Scope) -> list[str]:
    """Sites in scope (from agents and devices), for the filter drop-downs; no counting."""
    clause, params = scope_clause(scope)
    rows = await store.fetch(
        f"SELECT site FROM agents WHERE 1 = 1{clause} UNION SELECT DISTINCT site FROM devices WHERE 1 = 1{clause}",
        [*params, *params],
    )
    return sorted(str(r["site"]) for r in rows)


class FacetCache:
    """Filter values per scope, recomputed at most every `ttl` seconds (they change when devices appear)."""

    def __init__(self, ttl: float = FACET_TTL) -> None:
        self.ttl = ttl
        self._entries: dict[Scope, tuple[float, dict[str, list[str]]]] = {}

    async def get(self, store: SqlStore, scope: Scope, now: float) -> dict[str, list[str]]:
        """The facets of `scope`, from cache when fresh."""
        hit = self._entries.get(scope)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        value = await facets(store, scope)
        if len(self._entries) >= MAX_CACHED_SCOPES:
            self._entries.clear()
        self._entries[scope] = (now, value)
        return value
