"""The store: one interface, two back-ends (SQLite embedded, PostgreSQL at scale).

`SqlStore` holds every query and write in SQL shared by both back-ends (collector/store/sql.py); a back-end
supplies four primitives: `_fetch` (read rows as dicts), `_execute` (statements in one transaction),
`_ingest` (claim the batch key, then write its rows, all in one transaction; False when the key was already
stored) and `_migrate`. Query methods take the caller's site scope (`None` = every site) so access control
is applied in SQL, not by filtering results afterwards.
"""

from __future__ import annotations

import abc
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from collector.store import sql
from collector.store.rows import HOUR, BatchRows

Scope = frozenset[str] | None
Row = dict[str, Any]
Statement = tuple[str, Sequence[Any]]

# Page sizes: the API's default page and the most one call may ask for (keeps a response under ~1 MB).
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
DEVICE_SORTS = {
    "last_seen": "last_seen DESC",
    "first_seen": "first_seen DESC",
    "mac": "mac ASC",
    "vendor": "vendor ASC",
    "type": "device_type ASC",
    "confidence": "confidence DESC",
    "site": "site ASC",
}


@dataclass(frozen=True, slots=True)
class AgentRecord:
    agent_id: str
    site: str
    secret: str
    created_at: float
    revoked_at: float | None


@dataclass(frozen=True, slots=True)
class TokenRecord:
    token_id: str
    name: str
    role: str
    sites: tuple[str, ...]
    created_at: float
    revoked_at: float | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    ts: float
    token_id: str | None
    role: str | None
    method: str
    path: str
    query: str
    status: int
    remote: str | None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    site: str | None = None
    device_type: str | None = None
    vendor: str | None = None
    os: str | None = None
    randomized: bool | None = None
    since: float | None = None
    q: str | None = None
    sort: str = "last_seen"
    limit: int = DEFAULT_LIMIT
    offset: int = 0


@dataclass(frozen=True, slots=True)
class AlertFilter:
    site: str | None = None
    sid: int | None = None
    severity: int | None = None
    since: float | None = None
    until: float | None = None
    mac: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0


class StoreError(Exception):
    """A store that cannot be opened or used (bad URL, unreachable server)."""


class InvalidData(StoreError):
    """A batch the database refuses for its content (the client's fault: a 422, not a 503)."""


def _scope_clause(scope: Scope, column: str = "site") -> tuple[str, list[Any]]:
    if scope is None:
        return "", []
    if not scope:
        return " AND 1 = 0", []
    marks = ", ".join("?" for _ in scope)
    return f" AND {column} IN ({marks})", sorted(scope)


def _json_fields(row: Row, *names: str) -> Row:
    for name in names:
        value = row.get(name)
        if isinstance(value, str):
            row[name] = json.loads(value)
    return row


def _bools(row: Row, *names: str) -> Row:
    for name in names:
        if name in row and row[name] is not None:
            row[name] = bool(row[name])
    return row


class SqlStore(abc.ABC):
    """Shared queries and writes; subclasses provide the connection primitives."""

    dialect: sql.Dialect

    # ---- primitives -------------------------------------------------------------------------------
    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and apply pending migrations."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and threads."""

    @abc.abstractmethod
    async def _fetch(self, query: str, params: Sequence[Any] = ()) -> list[Row]: ...

    @abc.abstractmethod
    async def _execute(self, statements: Sequence[Statement]) -> list[int]: ...

    @abc.abstractmethod
    async def _ingest(self, rows: BatchRows) -> bool: ...

    async def fetch(self, query: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a read query written with `?` placeholders (used by tests and the dashboard)."""
        return await self._fetch(query, params)

    async def schema_versions(self) -> list[int]:
        """Migration versions recorded as applied, ascending."""
        rows = await self._fetch("SELECT version FROM schema_version ORDER BY version")
        return [int(r["version"]) for r in rows]

    # ---- ingest -----------------------------------------------------------------------------------
    async def ingest(self, rows: BatchRows) -> bool:
        """Store one batch and its events atomically; False (nothing written) when its seq was stored."""
        return await self._ingest(rows)

    async def note_rejected(self, agent_id: str, reason: str, now: float) -> None:
        """Count a batch refused after authentication (schema, size, rate) against its agent."""
        await self._execute(
            [
                (
                    "UPDATE agents SET rejected = rejected + 1, last_reject = ?, last_reject_at = ? WHERE agent_id = ?",
                    (reason, now, agent_id),
                )
            ]
        )

    # ---- agents -----------------------------------------------------------------------------------
    async def add_agent(self, agent_id: str, site: str, secret: str, now: float) -> None:
        """Enrol an agent; StoreError when the id is taken."""
        if await self.get_agent(agent_id) is not None:
            raise StoreError(f"agent {agent_id!r} already exists")
        await self._execute(
            [
                (
                    "INSERT INTO agents (agent_id, site, secret, created_at) VALUES (?, ?, ?, ?)",
                    (agent_id, site, secret, now),
                )
            ]
        )

    async def get_agent(self, agent_id: str) -> AgentRecord | None:
        """The credentials of one agent, revoked or not."""
        rows = await self._fetch(
            "SELECT agent_id, site, secret, created_at, revoked_at FROM agents WHERE agent_id = ?",
            (agent_id,),
        )
        return AgentRecord(**rows[0]) if rows else None

    async def revoke_agent(self, agent_id: str, now: float) -> bool:
        """Revoke an agent's credentials; False when no active agent has that id."""
        counts = await self._execute(
            [("UPDATE agents SET revoked_at = ? WHERE agent_id = ? AND revoked_at IS NULL", (now, agent_id))]
        )
        return counts[0] > 0

    async def list_agents(self, scope: Scope = None, now: float | None = None) -> list[Row]:
        """Agents with version, last seen, lag, health summary and rejected batch count."""
        clause, params = _scope_clause(scope)
        rows = await self._fetch(
            "SELECT agent_id, site, created_at, revoked_at, last_seen, last_seq, last_created, version, "
            f"batches, events, rejected, last_reject, last_reject_at, health FROM agents WHERE 1 = 1{clause} "
            "ORDER BY site, agent_id",
            params,
        )
        now = time.time() if now is None else now
        for row in rows:
            health = json.loads(row.pop("health")) if row.get("health") else None
            created = row.pop("last_created")
            row["lag"] = (row["last_seen"] - created) if created is not None and row["last_seen"] else None
            row["since_last_seen"] = (now - row["last_seen"]) if row["last_seen"] else None
            row["health"] = _health_summary(health)
        return rows

    # ---- tokens -----------------------------------------------------------------------------------
    async def add_token(
        self, token_id: str, name: str, role: str, sites: Iterable[str], token_hash: str, now: float
    ) -> None:
        """Store an operator token by its SHA-256 hash."""
        await self._execute(
            [
                (
                    "INSERT INTO tokens (token_id, name, role, sites, token_hash, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (token_id, name, role, json.dumps(sorted(sites)), token_hash, now),
                )
            ]
        )

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        """The token whose hash matches, revoked or not."""
        rows = await self._fetch(
            "SELECT token_id, name, role, sites, created_at, revoked_at FROM tokens WHERE token_hash = ?",
            (token_hash,),
        )
        if not rows:
            return None
        row = rows[0]
        row["sites"] = tuple(json.loads(row["sites"]))
        return TokenRecord(**row)

    async def list_tokens(self) -> list[Row]:
        """Every token (never its hash)."""
        rows = await self._fetch(
            "SELECT token_id, name, role, sites, created_at, revoked_at FROM tokens ORDER BY created_at"
        )
        return [_json_fields(r, "sites") for r in rows]

    async def revoke_token(self, token_id: str, now: float) -> bool:
        """Revoke a token; False when no active token has that id."""
        counts = await self._execute(
            [("UPDATE tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL", (now, token_id))]
        )
        return counts[0] > 0

    # ---- audit ------------------------------------------------------------------------------------
    async def audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append entries to the audit log."""
        if not entries:
            return
        await self._execute(
            [
                (
                    sql.INSERT_AUDIT,
                    (e.ts, e.token_id, e.role, e.method, e.path, e.query, e.status, e.remote, e.detail),
                )
                for e in entries
            ]
        )

    async def audit_log(
        self,
        since: float | None = None,
        token_id: str | None = None,
        limit: int = DEFAULT_LIMIT,
        offset: int = 0,
    ) -> list[Row]:
        """Audit entries, newest first."""
        where, params = "WHERE 1 = 1", list[Any]()
        if since is not None:
            where += " AND ts >= ?"
            params.append(since)
        if token_id is not None:
            where += " AND token_id = ?"
            params.append(token_id)
        return await self._fetch(
            "SELECT id, ts, token_id, role, method, path, query, status, remote, detail FROM audit "
            f"{where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )

    # ---- queries ----------------------------------------------------------------------------------
    async def sites(self, scope: Scope = None) -> list[Row]:
        """Sites known from agents or devices, with agent, device and alert counts (three grouped queries)."""
        clause, params = _scope_clause(scope)
        out: dict[str, Row] = {}

        def site_row(name: str) -> Row:
            return out.setdefault(
                name,
                {
                    "site": name,
                    "agents": 0,
                    "last_seen": None,
                    "devices": 0,
                    "alerts": 0,
                    "privacy_profiles": [],
                    "pseudonymised_devices": 0,
                },
            )

        for r in await self._fetch(
            f"SELECT site, COUNT(*) AS n, MAX(last_seen) AS last_seen FROM agents WHERE 1 = 1{clause} GROUP BY site",
            params,
        ):
            site_row(r["site"]).update(agents=int(r["n"]), last_seen=r["last_seen"])
        # The privacy profile each agent reports applying, from its latest health event.
        for r in await self._fetch(f"SELECT site, health FROM agents WHERE health IS NOT NULL{clause}", params):
            try:
                profile = json.loads(r["health"]).get("privacy_profile")
            except (ValueError, AttributeError):
                profile = None
            row = site_row(r["site"])
            if isinstance(profile, str) and profile not in row["privacy_profiles"]:
                row["privacy_profiles"] = sorted([*row["privacy_profiles"], profile])
        for r in await self._fetch(
            f"SELECT site, COUNT(*) AS n FROM devices WHERE pseudonymised{clause} GROUP BY site", params
        ):
            site_row(r["site"])["pseudonymised_devices"] = int(r["n"])
        for table in ("devices", "alerts"):
            for r in await self._fetch(
                f"SELECT site, COUNT(*) AS n FROM {table} WHERE 1 = 1{clause} GROUP BY site", params
            ):
                site_row(r["site"])[table] = int(r["n"])
        return [out[name] for name in sorted(out)]

    async def devices(self, flt: DeviceFilter, scope: Scope = None) -> tuple[list[Row], int]:
        """A page of devices matching the filter, and the total number matching."""
        clause, params = _scope_clause(scope)
        where = f"WHERE 1 = 1{clause}"
        if flt.site is not None:
            where += " AND site = ?"
            params.append(flt.site)
        if flt.device_type is not None:
            where += " AND device_type = ?"
            params.append(flt.device_type)
        if flt.vendor is not None:
            where += " AND vendor {like} ?"
            params.append(f"%{flt.vendor}%")
        if flt.os is not None:
            where += " AND os {like} ?"
            params.append(f"%{flt.os}%")
        if flt.randomized is not None:
            where += " AND randomized = ?"
            params.append(flt.randomized)
        if flt.since is not None:
            where += " AND first_seen >= ?"
            params.append(flt.since)
        if flt.q:
            where += (
                " AND (mac {like} ? OR vendor {like} ? OR device_type {like} ? OR os {like} ? "
                "OR names {like} ? OR ips {like} ?)"
            )
            params.extend([f"%{flt.q}%"] * 6)
        total = await self._fetch(f"SELECT COUNT(*) AS n FROM devices {where}", params)
        order = DEVICE_SORTS.get(flt.sort, DEVICE_SORTS["last_seen"])
        rows = await self._fetch(
            "SELECT site, mac, first_seen, last_seen, vendor, os, os_version, device_type, confidence, "
            f"randomized, pseudonymised, ips, names, fingerprints, agent_id FROM devices {where} "
            f"ORDER BY {order}, site, mac LIMIT ? OFFSET ?",
            [*params, flt.limit, flt.offset],
        )
        return [_device(r) for r in rows], int(total[0]["n"])

    async def device(self, site: str, mac: str) -> Row | None:
        """One device with its evidence timeline, its alerts and its traffic totals."""
        rows = await self._fetch(
            "SELECT site, mac, first_seen, last_seen, vendor, os, os_version, device_type, confidence, "
            "randomized, pseudonymised, ips, names, fingerprints, agent_id FROM devices "
            "WHERE site = ? AND mac = ?",
            (site, mac),
        )
        if not rows:
            return None
        device = _device(rows[0])
        evidence = await self._fetch(
            "SELECT source, value, suggests, weight, first_seen, last_seen, agent_id FROM evidence "
            "WHERE site = ? AND mac = ? ORDER BY first_seen, source, value",
            (site, mac),
        )
        device["evidence"] = [_json_fields(r, "suggests") for r in evidence]
        device["alerts"], _ = await self.alerts(AlertFilter(site=site, mac=mac, limit=MAX_LIMIT))
        traffic = await self._fetch(
            "SELECT COALESCE(SUM(flows), 0) AS flows, COALESCE(SUM(bytes_out), 0) AS bytes_out, "
            "COALESCE(SUM(bytes_in), 0) AS bytes_in FROM flow_hourly WHERE site = ? AND mac = ?",
            (site, mac),
        )
        device["traffic"] = traffic[0]
        return device

    async def alerts(self, flt: AlertFilter, scope: Scope = None) -> tuple[list[Row], int]:
        """A page of alerts, newest first, and the total number matching."""
        clause, params = _scope_clause(scope)
        where = f"WHERE 1 = 1{clause}"
        for column, value in (("site", flt.site), ("sid", flt.sid), ("severity", flt.severity)):
            if value is not None:
                where += f" AND {column} = ?"
                params.append(value)
        if flt.mac is not None:
            where += " AND src_mac = ?"
            params.append(flt.mac)
        if flt.since is not None:
            where += " AND ts >= ?"
            params.append(flt.since)
        if flt.until is not None:
            where += " AND ts < ?"
            params.append(flt.until)
        total = await self._fetch(f"SELECT COUNT(*) AS n FROM alerts {where}", params)
        rows = await self._fetch(
            "SELECT agent_id, seq, idx, site, ts, sid, gid, rev, msg, classtype, severity, src, sport, dst, "
            f"dport, proto, community_id, app_proto, src_mac, app_fields FROM alerts {where} "
            "ORDER BY ts DESC, agent_id, seq, idx LIMIT ? OFFSET ?",
            [*params, flt.limit, flt.offset],
        )
        return [_json_fields(r, "app_fields") for r in rows], int(total[0]["n"])

    async def top_talkers(self, site: str, since: float, limit: int = 10) -> list[Row]:
        """Devices of a site ranked by bytes (both directions) since a time, from the hourly roll-ups."""
        rows = await self._fetch(
            "SELECT f.mac AS mac, SUM(f.flows) AS flows, SUM(f.bytes_out) AS bytes_out, "
            "SUM(f.bytes_in) AS bytes_in, SUM(f.bytes_out + f.bytes_in) AS bytes, "
            "MAX(d.vendor) AS vendor, MAX(d.device_type) AS device_type "
            "FROM flow_hourly f LEFT JOIN devices d ON d.site = f.site AND d.mac = f.mac "
            "WHERE f.site = ? AND f.hour >= ? GROUP BY f.mac ORDER BY bytes DESC, mac LIMIT ?",
            (site, since - since % HOUR, limit),
        )
        return [
            {k: (int(v) if k in ("flows", "bytes_out", "bytes_in", "bytes") else v) for k, v in r.items()} for r in rows
        ]

    async def health_series(self, agent_id: str, since: float, limit: int = MAX_LIMIT) -> list[Row]:
        """Health time series of one agent (oldest first)."""
        return await self._fetch(
            "SELECT ts, packets, drops, cpu, rss, spool_bytes FROM health WHERE agent_id = ? AND ts >= ? "
            "ORDER BY ts LIMIT ?",
            (agent_id, since, limit),
        )

    # ---- retention --------------------------------------------------------------------------------
    async def apply_retention(self, now: float, days: dict[str, float]) -> dict[str, int]:
        """Delete rows older than each kind's period; returns rows deleted per kind."""
        kinds = [k for k in sql.RETENTION_TARGETS if k in days and days[k] > 0]
        statements: list[Statement] = []
        for kind in kinds:
            table, column = sql.RETENTION_TARGETS[kind]
            statements.append((f"DELETE FROM {table} WHERE {column} < ?", (now - days[kind] * 86400.0,)))
        counts = await self._execute(statements)
        return dict(zip(kinds, counts, strict=True))


def _device(row: Row) -> Row:
    _json_fields(row, "ips", "names", "fingerprints")
    return _bools(row, "randomized", "pseudonymised")


_HEALTH_KEYS = (
    "ts",
    "packets",
    "drops_kernel",
    "drops_pipeline",
    "flows_live",
    "devices",
    "batches_spooled",
    "batches_rejected",
    "spool_bytes",
    "cpu",
    "rss",
    "uptime",
    "rules_version",
    "fingerprints_version",
    "alarms",
    "shed",
)


def _health_summary(health: dict[str, Any] | None) -> dict[str, Any] | None:
    if health is None:
        return None
    return {k: health.get(k, 0) for k in _HEALTH_KEYS}
