"""PostgreSQL back-end through asyncpg: a connection pool, one transaction per batch.

Idempotency under concurrency rests on the batches primary key: the first transaction to insert
(agent_id, seq) wins; a second collector inserting the same key waits for it, then finds the key taken
(`ON CONFLICT DO NOTHING` returns no row) and writes nothing. Rows are written in key order (see rows.py),
and a deadlock or serialization failure is retried, so several collectors can share one database.

A `schema=NAME` query parameter in the URL selects (and creates) a PostgreSQL schema, which is how tests and
several deployments share one database.
"""

from __future__ import annotations

import dataclasses
import decimal
import re
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from collector.store import sql
from collector.store.base import InvalidData, Row, SqlStore, Statement, StoreError
from collector.store.rows import BatchRows

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Pool bounds: ingest holds a connection for one batch transaction (milliseconds); 10 covers a busy
# collector process without exhausting PostgreSQL's default max_connections (100) with several collectors.
POOL_MIN = 1
POOL_MAX = 10
# Retries of a batch transaction that lost a deadlock or serialization race to another collector.
RETRIES = 5
# Key of the advisory lock that serialises migrations between collectors starting together.
MIGRATION_LOCK = 0x7665696C  # "veil"
_R = sql.POSTGRES.render


def split_url(url: str) -> tuple[str, str]:
    """Split a `postgresql://...?schema=NAME` URL into the asyncpg DSN and the schema (`public`)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = "public"
    kept = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    if not _SCHEMA_RE.match(schema):
        raise StoreError(f"schema {schema!r}: expected lower-case letters, digits and _")
    return urlunsplit(parts._replace(query=urlencode(kept))), schema


def _clean(value: Any) -> Any:
    return value.replace("\x00", "\ufffd") if type(value) is str else value


def without_nul(rows: BatchRows) -> BatchRows:
    """A copy of `rows` whose text has U+0000 replaced by U+FFFD (the replacement character)."""
    fixed = dataclasses.replace(rows)
    for name in ("devices", "evidence", "alerts", "flows", "health", "observations"):
        setattr(fixed, name, [tuple(_clean(v) for v in row) for row in getattr(rows, name)])
    fixed.agent_version = _clean(rows.agent_version)
    fixed.health_json = _clean(rows.health_json)
    return fixed


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


class PostgresStore(SqlStore):
    """A store in a PostgreSQL database (URL `postgresql://user@host:port/db[?schema=name]`)."""

    dialect = sql.POSTGRES

    def __init__(self, url: str) -> None:
        self.url = url
        self.dsn, self.schema = split_url(url)
        self._pool: asyncpg.Pool | None = None
        self._rendered: dict[str, str] = {}

    def _sql(self, query: str) -> str:
        text = self._rendered.get(query)
        if text is None:
            text = self._rendered[query] = _R(query)
        return text

    async def open(self) -> None:
        try:
            conn = await asyncpg.connect(self.dsn)
        except (OSError, asyncpg.PostgresError, ValueError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(f'SET search_path TO "{self.schema}"')
            await _migrate(conn)
        except asyncpg.PostgresError as exc:
            raise StoreError(f"PostgreSQL migration failed: {exc}") from exc
        finally:
            await conn.close()
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=POOL_MIN, max_size=POOL_MAX, server_settings={"search_path": self.schema}
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _require(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("store is not open")
        return self._pool

    async def _fetch(self, query: str, params: Sequence[Any] = ()) -> list[Row]:
        records = await self._require().fetch(self._sql(query), *params)
        return [{k: _plain(v) for k, v in r.items()} for r in records]

    async def _execute(self, statements: Sequence[Statement]) -> list[int]:
        counts = []
        try:
            async with self._require().acquire() as conn, conn.transaction():
                for query, params in statements:
                    status = await conn.execute(self._sql(query), *params)
                    tail = status.rsplit(" ", 1)[-1]
                    counts.append(int(tail) if tail.isdigit() else 0)
        except asyncpg.PostgresError as exc:
            raise StoreError(str(exc)) from exc
        return counts

    async def _ingest(self, rows: BatchRows) -> bool:
        async with self._require().acquire() as conn:
            for attempt in range(RETRIES):
                try:
                    return await _ingest_rows(conn, rows)
                except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                    if attempt == RETRIES - 1:
                        raise
                except asyncpg.CharacterNotInRepertoireError:
                    # U+0000 (valid in MessagePack and SQLite text) cannot be stored in PostgreSQL text.
                    rows = without_nul(rows)
                except asyncpg.DataError as exc:
                    raise InvalidData(str(exc)) from exc
        raise StoreError(f"batch {rows.agent_id}:{rows.seq} not stored after {RETRIES} attempts")


_CLAIM = _R(sql.CLAIM_BATCH + " RETURNING seq")
_DEVICE = _R(sql.UPSERT_DEVICE)
_EVIDENCE = _R(sql.UPSERT_EVIDENCE)
_ALERT = _R(sql.INSERT_ALERT)
_FLOW = _R(sql.UPSERT_FLOW)
_HEALTH = _R(sql.INSERT_HEALTH)
_OBS = _R(sql.INSERT_OBSERVATION)
_AGENT = _R(sql.UPDATE_AGENT)


async def _ingest_rows(conn: asyncpg.Connection, r: BatchRows) -> bool:
    async with conn.transaction():
        claimed = await conn.fetchval(_CLAIM, r.agent_id, r.seq, r.site, r.schema, r.created, r.received, r.events)
        if claimed is None:
            return False
        if r.devices:
            await conn.executemany(_DEVICE, r.devices)
        if r.evidence:
            await conn.executemany(_EVIDENCE, r.evidence)
        if r.alerts:
            await conn.executemany(_ALERT, r.alerts)
        if r.flows:
            await conn.executemany(_FLOW, r.flows)
        if r.health:
            await conn.executemany(_HEALTH, r.health)
        if r.observations:
            await conn.executemany(_OBS, r.observations)
        await conn.execute(
            _AGENT, r.received, r.seq, r.created, r.seq, r.events, r.agent_version, r.health_json, r.agent_id
        )
    return True


async def _migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply pending migrations under an advisory lock (collectors starting together take turns)."""
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(sql.SCHEMA_VERSION_DDL)
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_version")}
        for migration in sql.MIGRATIONS:
            if migration.version in done:
                continue
            for statement in migration.statements:
                await conn.execute(_R(statement))
            await conn.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES ($1, $2, $3)",
                migration.version,
                migration.description,
                time.time(),
            )
            applied.append(migration.version)
    return applied
