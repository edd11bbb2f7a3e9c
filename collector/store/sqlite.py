"""SQLite back-end: WAL, one writer thread with group commit, reader threads; never blocks the event loop.

Writes queue to a single writer thread that owns the only write connection. It takes every job waiting
(up to `GROUP_MAX`), runs each inside its own SAVEPOINT (one bad job rolls back alone) and commits them with
one COMMIT, so the fsync cost is shared by all batches that arrived meanwhile. Reads run on a small pool of
threads, each with its own read-only connection; WAL lets them proceed while the writer commits.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from collector.store import sql
from collector.store.base import Row, SqlStore, Statement, StoreError
from collector.store.rows import BatchRows

# Jobs committed together at most: bounds the time one COMMIT holds the write lock (~tens of ms).
GROUP_MAX = 64
# Reader threads: the query API is light; two keep one slow query from stalling the dashboard.
READERS = 2
# Wait this long for a lock held by another process (the CLI enrolling an agent while serving), seconds.
BUSY_TIMEOUT_MS = 10_000

Job = Callable[[sqlite3.Connection], Any]


def _connect(path: str, readonly: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if readonly:
        conn.execute("PRAGMA query_only = 1")
    else:
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: every acknowledged batch is on disk even after a power cut; group commit pays for it.
        conn.execute("PRAGMA synchronous = FULL")
    conn.row_factory = sqlite3.Row
    return conn


class SqliteStore(SqlStore):
    """A store in one SQLite file (`:memory:` is refused: readers need the same database)."""

    dialect = sql.SQLITE

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path == ":memory:" or self.path.startswith("file:"):
            raise StoreError("SQLite store needs a file path")
        self._jobs: queue.SimpleQueue[tuple[Job, asyncio.Future[Any], asyncio.AbstractEventLoop] | None] = (
            queue.SimpleQueue()
        )
        self._writer: threading.Thread | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    async def open(self) -> None:
        parent = Path(self.path).resolve().parent
        if not parent.is_dir():
            raise StoreError(f"{self.path}: folder {parent} does not exist")
        try:
            conn = _connect(self.path)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc
        try:
            _migrate(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"{self.path}: migration failed: {exc}") from exc
        self._writer = threading.Thread(target=self._write_loop, args=(conn,), name="sqlite-writer", daemon=True)
        self._writer.start()
        self._readers = ThreadPoolExecutor(READERS, thread_name_prefix="sqlite-reader")

    async def close(self) -> None:
        if self._writer is not None:
            self._jobs.put(None)
            await asyncio.get_running_loop().run_in_executor(None, self._writer.join)
            self._writer = None
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None
        with self._lock:
            for conn in self._read_conns:
                conn.close()
            self._read_conns.clear()

    # ---- writer -----------------------------------------------------------------------------------
    def _write_loop(self, conn: sqlite3.Connection) -> None:
        jobs = self._jobs
        try:
            while True:
                first = jobs.get()
                if first is None:
                    return
                group = [first]
                stop = False
                while len(group) < GROUP_MAX:
                    try:
                        item = jobs.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stop = True
                        break
                    group.append(item)
                self._run_group(conn, group)
                if stop:
                    return
        finally:
            conn.close()

    @staticmethod
    def _run_group(
        conn: sqlite3.Connection, group: list[tuple[Job, asyncio.Future[Any], asyncio.AbstractEventLoop]]
    ) -> None:
        results: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job, _fut, _loop in group:
                conn.execute("SAVEPOINT job")
                try:
                    results.append((True, job(conn)))
                    conn.execute("RELEASE job")
                except Exception as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    results.append((False, exc))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            results = [(False, StoreError(f"commit failed: {exc}"))] * len(group)
        for (ok, value), (_job, fut, loop) in zip(results, group, strict=True):
            loop.call_soon_threadsafe(_settle, fut, ok, value)

    async def _write(self, job: Job) -> Any:
        if self._writer is None:
            raise StoreError("store is not open")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._jobs.put((job, fut, loop))
        return await fut

    # ---- primitives -------------------------------------------------------------------------------
    def _read_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._read_conns.append(conn)
        return conn

    async def _fetch(self, query: str, params: Sequence[Any] = ()) -> list[Row]:
        if self._readers is None:
            raise StoreError("store is not open")
        text = self.dialect.render(query)

        def run() -> list[Row]:
            cur = self._read_conn().execute(text, tuple(params))
            return [dict(r) for r in cur.fetchall()]

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def _execute(self, statements: Sequence[Statement]) -> list[int]:
        rendered = [(self.dialect.render(q), tuple(p)) for q, p in statements]

        def job(conn: sqlite3.Connection) -> list[int]:
            return [conn.execute(q, p).rowcount for q, p in rendered]

        try:
            result: list[int] = await self._write(job)
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc
        return result

    async def _ingest(self, rows: BatchRows) -> bool:
        stored: bool = await self._write(lambda conn: _ingest_rows(conn, rows))
        return stored


def _settle(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


_R = sql.SQLITE.render
_CLAIM = _R(sql.CLAIM_BATCH)
_DEVICE = _R(sql.UPSERT_DEVICE)
_EVIDENCE = _R(sql.UPSERT_EVIDENCE)
_ALERT = _R(sql.INSERT_ALERT)
_FLOW = _R(sql.UPSERT_FLOW)
_HEALTH = _R(sql.INSERT_HEALTH)
_OBS = _R(sql.INSERT_OBSERVATION)
_AGENT = _R(sql.UPDATE_AGENT)


def _ingest_rows(conn: sqlite3.Connection, r: BatchRows) -> bool:
    cur = conn.execute(_CLAIM, (r.agent_id, r.seq, r.site, r.schema, r.created, r.received, r.events))
    if cur.rowcount != 1:
        return False
    if r.devices:
        conn.executemany(_DEVICE, r.devices)
    if r.evidence:
        conn.executemany(_EVIDENCE, r.evidence)
    if r.alerts:
        conn.executemany(_ALERT, r.alerts)
    if r.flows:
        conn.executemany(_FLOW, r.flows)
    if r.health:
        conn.executemany(_HEALTH, r.health)
    if r.observations:
        conn.executemany(_OBS, r.observations)
    conn.execute(
        _AGENT,
        (r.received, r.seq, r.created, r.seq, r.events, r.agent_version, r.health_json, r.agent_id),
    )
    return True


def _migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply pending migrations, each in its own transaction; returns the versions applied."""
    applied: list[int] = []
    conn.execute(sql.SCHEMA_VERSION_DDL)
    for migration in sql.MIGRATIONS:
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute("SELECT 1 FROM schema_version WHERE version = ?", (migration.version,)).fetchone()
            if done is None:
                for statement in migration.statements:
                    conn.execute(_R(statement))
                conn.execute(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.description, time.time()),
                )
                applied.append(migration.version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied
