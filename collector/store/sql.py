"""SQL shared by the SQLite and PostgreSQL stores: versioned migrations and the ingest statements.

Statements are written once with `?` placeholders and `{least}`/`{greatest}` function names; each back-end
renders them for its dialect (`$1..$n`, LEAST/GREATEST on PostgreSQL). Times are float seconds since the
epoch in both; JSON values are stored as text so both back-ends read them back the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between SQLite and PostgreSQL in our SQL."""

    name: str
    least: str
    greatest: str
    serial: str
    like: str
    numbered: bool
    blob: str = "BLOB"

    def render(self, sql: str) -> str:
        """Dialect text of a statement written with `?` and `{least}`/`{greatest}`/`{serial}`/`{like}`/`{blob}`."""
        text = sql.format(least=self.least, greatest=self.greatest, serial=self.serial, like=self.like, blob=self.blob)
        if not self.numbered:
            return text
        counter = iter(range(1, 10_000))
        return re.sub(r"\?", lambda _m: f"${next(counter)}", text)


SQLITE: Final = Dialect("sqlite", "min", "max", "INTEGER PRIMARY KEY", "LIKE", numbered=False)
POSTGRES: Final = Dialect(
    "postgresql", "LEAST", "GREATEST", "BIGSERIAL PRIMARY KEY", "ILIKE", numbered=True, blob="BYTEA"
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "agents, tokens, batches, inventory, alerts, flow roll-ups, health, observations, audit",
        (
            """CREATE TABLE agents (
                agent_id TEXT PRIMARY KEY, site TEXT NOT NULL, secret TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION,
                last_seen DOUBLE PRECISION, last_seq BIGINT, last_created DOUBLE PRECISION, version TEXT,
                batches BIGINT NOT NULL DEFAULT 0, events BIGINT NOT NULL DEFAULT 0,
                rejected BIGINT NOT NULL DEFAULT 0, last_reject TEXT, last_reject_at DOUBLE PRECISION,
                health TEXT)""",
            "CREATE INDEX agents_site ON agents (site)",
            """CREATE TABLE tokens (
                token_id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, sites TEXT NOT NULL,
                token_hash TEXT NOT NULL UNIQUE, created_at DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION, last_used DOUBLE PRECISION)""",
            """CREATE TABLE batches (
                agent_id TEXT NOT NULL, seq BIGINT NOT NULL, site TEXT NOT NULL,
                schema_v INTEGER NOT NULL, created DOUBLE PRECISION NOT NULL,
                received DOUBLE PRECISION NOT NULL, events INTEGER NOT NULL,
                PRIMARY KEY (agent_id, seq))""",
            "CREATE INDEX batches_received ON batches (received)",
            """CREATE TABLE devices (
                site TEXT NOT NULL, mac TEXT NOT NULL, first_seen DOUBLE PRECISION NOT NULL,
                last_seen DOUBLE PRECISION NOT NULL, vendor TEXT, os TEXT, os_version TEXT, device_type TEXT,
                confidence DOUBLE PRECISION NOT NULL, randomized BOOLEAN NOT NULL,
                pseudonymised BOOLEAN NOT NULL, ips TEXT NOT NULL, names TEXT NOT NULL,
                fingerprints TEXT NOT NULL, agent_id TEXT NOT NULL, PRIMARY KEY (site, mac))""",
            "CREATE INDEX devices_last_seen ON devices (last_seen)",
            "CREATE INDEX devices_first_seen ON devices (first_seen)",
            """CREATE TABLE evidence (
                site TEXT NOT NULL, mac TEXT NOT NULL, source TEXT NOT NULL, value TEXT NOT NULL,
                suggests TEXT NOT NULL, weight DOUBLE PRECISION NOT NULL,
                first_seen DOUBLE PRECISION NOT NULL, last_seen DOUBLE PRECISION NOT NULL,
                agent_id TEXT NOT NULL, PRIMARY KEY (site, mac, source, value))""",
            "CREATE INDEX evidence_last_seen ON evidence (last_seen)",
            """CREATE TABLE alerts (
                agent_id TEXT NOT NULL, seq BIGINT NOT NULL, idx INTEGER NOT NULL, site TEXT NOT NULL,
                ts DOUBLE PRECISION NOT NULL, sid BIGINT NOT NULL, gid BIGINT NOT NULL, rev BIGINT NOT NULL,
                msg TEXT NOT NULL, classtype TEXT NOT NULL, severity INTEGER NOT NULL, src TEXT,
                sport INTEGER, dst TEXT, dport INTEGER, proto TEXT, community_id TEXT, app_proto TEXT,
                src_mac TEXT, app_fields TEXT NOT NULL, PRIMARY KEY (agent_id, seq, idx))""",
            "CREATE INDEX alerts_site_ts ON alerts (site, ts)",
            "CREATE INDEX alerts_ts ON alerts (ts)",
            "CREATE INDEX alerts_mac ON alerts (site, src_mac)",
            """CREATE TABLE flow_hourly (
                site TEXT NOT NULL, mac TEXT NOT NULL, hour DOUBLE PRECISION NOT NULL, flows BIGINT NOT NULL,
                pkts_out BIGINT NOT NULL, pkts_in BIGINT NOT NULL, bytes_out BIGINT NOT NULL,
                bytes_in BIGINT NOT NULL, PRIMARY KEY (site, mac, hour))""",
            "CREATE INDEX flow_hourly_hour ON flow_hourly (hour)",
            """CREATE TABLE health (
                agent_id TEXT NOT NULL, seq BIGINT NOT NULL, idx INTEGER NOT NULL, site TEXT NOT NULL,
                ts DOUBLE PRECISION NOT NULL, packets BIGINT NOT NULL, drops BIGINT NOT NULL,
                cpu DOUBLE PRECISION NOT NULL, rss BIGINT NOT NULL, spool_bytes BIGINT NOT NULL,
                data TEXT NOT NULL, PRIMARY KEY (agent_id, seq, idx))""",
            "CREATE INDEX health_agent_ts ON health (agent_id, ts)",
            "CREATE INDEX health_ts ON health (ts)",
            """CREATE TABLE observations (
                agent_id TEXT NOT NULL, seq BIGINT NOT NULL, idx INTEGER NOT NULL, site TEXT NOT NULL,
                ts DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, src_mac TEXT, src TEXT, dst TEXT,
                fields TEXT NOT NULL, PRIMARY KEY (agent_id, seq, idx))""",
            "CREATE INDEX observations_ts ON observations (ts)",
            """CREATE TABLE audit (
                id {serial}, ts DOUBLE PRECISION NOT NULL, token_id TEXT, role TEXT, method TEXT NOT NULL,
                path TEXT NOT NULL, query TEXT NOT NULL, status INTEGER NOT NULL, remote TEXT,
                detail TEXT)""",
            "CREATE INDEX audit_ts ON audit (ts)",
        ),
    ),
    Migration(
        2,
        "fleet bundles, groups, assignments and settings; alerts by sid",
        (
            # The same tables collector/fleet/store.py creates when absent; made here under the migration
            # lock so two collectors starting together on one PostgreSQL never race on them.
            """CREATE TABLE IF NOT EXISTS fleet_bundles (
                digest TEXT PRIMARY KEY, version TEXT NOT NULL, description TEXT NOT NULL,
                created DOUBLE PRECISION NOT NULL, published_at DOUBLE PRECISION NOT NULL, size BIGINT NOT NULL,
                files INTEGER NOT NULL, key_id TEXT NOT NULL, archive {blob} NOT NULL)""",
            "CREATE TABLE IF NOT EXISTS fleet_site_groups (site TEXT PRIMARY KEY, group_name TEXT NOT NULL)",
            """CREATE TABLE IF NOT EXISTS fleet_assignments (
                target_kind TEXT NOT NULL, target TEXT NOT NULL, digest TEXT NOT NULL, previous TEXT,
                canary TEXT NOT NULL, percent INTEGER NOT NULL, assigned_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (target_kind, target))""",
            """CREATE TABLE IF NOT EXISTS fleet_settings (
                target_kind TEXT NOT NULL, target TEXT NOT NULL, settings TEXT NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (target_kind, target))""",
            "CREATE INDEX IF NOT EXISTS alerts_sid ON alerts (sid)",
        ),
    ),
)

SCHEMA_VERSION_DDL: Final = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"""

CLAIM_BATCH: Final = """INSERT INTO batches (agent_id, seq, site, schema_v, created, received, events)
    VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"""

_LATEST = "CASE WHEN excluded.last_seen >= devices.last_seen THEN excluded.{c} ELSE devices.{c} END"
UPSERT_DEVICE: Final = """INSERT INTO devices (site, mac, first_seen, last_seen, vendor, os, os_version,
    device_type, confidence, randomized, pseudonymised, ips, names, fingerprints, agent_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (site, mac) DO UPDATE SET
    first_seen = {least}(devices.first_seen, excluded.first_seen),
    last_seen = {greatest}(devices.last_seen, excluded.last_seen), """ + ", ".join(
    f"{c} = " + _LATEST.replace("{c}", c)
    for c in (
        "vendor",
        "os",
        "os_version",
        "device_type",
        "confidence",
        "randomized",
        "pseudonymised",
        "ips",
        "names",
        "fingerprints",
        "agent_id",
    )
)

UPSERT_EVIDENCE: Final = """INSERT INTO evidence (site, mac, source, value, suggests, weight, first_seen,
    last_seen, agent_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (site, mac, source, value) DO UPDATE SET
    first_seen = {least}(evidence.first_seen, excluded.first_seen),
    last_seen = {greatest}(evidence.last_seen, excluded.last_seen),
    suggests = excluded.suggests, weight = excluded.weight, agent_id = excluded.agent_id"""

INSERT_ALERT: Final = """INSERT INTO alerts (agent_id, seq, idx, site, ts, sid, gid, rev, msg, classtype,
    severity, src, sport, dst, dport, proto, community_id, app_proto, src_mac, app_fields)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"""

UPSERT_FLOW: Final = """INSERT INTO flow_hourly (site, mac, hour, flows, pkts_out, pkts_in, bytes_out,
    bytes_in) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (site, mac, hour) DO UPDATE SET flows = flow_hourly.flows + excluded.flows,
    pkts_out = flow_hourly.pkts_out + excluded.pkts_out, pkts_in = flow_hourly.pkts_in + excluded.pkts_in,
    bytes_out = flow_hourly.bytes_out + excluded.bytes_out,
    bytes_in = flow_hourly.bytes_in + excluded.bytes_in"""

INSERT_HEALTH: Final = """INSERT INTO health (agent_id, seq, idx, site, ts, packets, drops, cpu, rss,
    spool_bytes, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"""

INSERT_OBSERVATION: Final = """INSERT INTO observations (agent_id, seq, idx, site, ts, kind, src_mac, src,
    dst, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"""

# Parameters: received, seq, seq, created, events, version, health, agent_id.
UPDATE_AGENT: Final = """UPDATE agents SET last_seen = {greatest}(COALESCE(last_seen, 0), ?),
    last_created = CASE WHEN ? >= COALESCE(last_seq, -1) THEN ? ELSE last_created END,
    last_seq = {greatest}(COALESCE(last_seq, -1), ?), batches = batches + 1, events = events + ?,
    version = COALESCE(?, version), health = COALESCE(?, health) WHERE agent_id = ?"""

INSERT_AUDIT: Final = """INSERT INTO audit (ts, token_id, role, method, path, query, status, remote, detail)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""

# Retention: kind -> (table, time column).
RETENTION_TARGETS: Final[dict[str, tuple[str, str]]] = {
    "flows": ("flow_hourly", "hour"),
    "health": ("health", "ts"),
    "observations": ("observations", "ts"),
    "alerts": ("alerts", "ts"),
    "evidence": ("evidence", "last_seen"),
    "devices": ("devices", "last_seen"),
    "audit": ("audit", "ts"),
    "batches": ("batches", "received"),
}
