"""Storage back-ends of the collector; `open_store(url)` picks one from the database URL."""

from __future__ import annotations

from collector.store.base import (
    AgentRecord,
    AlertFilter,
    AuditEntry,
    DeviceFilter,
    Scope,
    SqlStore,
    StoreError,
    TokenRecord,
)

__all__ = [
    "AgentRecord",
    "AlertFilter",
    "AuditEntry",
    "DeviceFilter",
    "Scope",
    "SqlStore",
    "StoreError",
    "TokenRecord",
    "make_store",
]


def make_store(url: str) -> SqlStore:
    """A store for `url`: `postgresql://...` (or `postgres://`) → PostgreSQL, anything else → SQLite file."""
    if url.startswith(("postgresql://", "postgres://")):
        from collector.store.postgres import PostgresStore

        return PostgresStore(url)
    from collector.store.sqlite import SqliteStore

    path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
    return SqliteStore(path)
