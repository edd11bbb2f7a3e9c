"""Store back-ends directly: migrations, retention, and the pure batch-to-rows mapping."""

from __future__ import annotations

import asyncio
import time

import pytest

from collector.config import DEFAULT_RETENTION_DAYS
from collector.store import StoreError, make_store
from collector.store.rows import batch_rows
from collector.store.sql import MIGRATIONS
from telemetry.codec import new_batch

from .conftest import T0, alert, device, flow, health


async def test_migrations_are_idempotent_and_keep_data(db_url: str) -> None:
    store = make_store(db_url)
    await store.open()
    await store.add_agent("agent-1", "school-a", "s3cret", T0)
    await store.close()
    # Reopening (a restart) and two collectors starting at once apply nothing twice.
    stores = [make_store(db_url) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        assert await stores[0].schema_versions() == [m.version for m in MIGRATIONS]
        agent = await stores[1].get_agent("agent-1")
        assert agent is not None and agent.secret == "s3cret"
    finally:
        for s in stores:
            await s.close()


async def test_retention_deletes_only_old_rows(db_url: str) -> None:
    store = make_store(db_url)
    await store.open()
    try:
        await store.add_agent("agent-1", "school-a", "s", T0)
        now = T0 + 400 * 86400.0
        old = new_batch("agent-1", "school-a", 1, T0, [flow(0), alert(0), health(0), device("02:00:00:00:00:01")])
        recent_events = [type(e)(**{**_fields(e), **_shift(e, now - 3600)}) for e in (flow(0), alert(0), health(0))]
        recent = new_batch("agent-1", "school-a", 2, now, recent_events)
        assert await store.ingest(batch_rows(old, T0))
        assert await store.ingest(batch_rows(recent, now))
        deleted = await store.apply_retention(now, DEFAULT_RETENTION_DAYS)
        assert deleted["flows"] == 2  # the old hour, for the source device and the gateway
        assert deleted["alerts"] == 1 and deleted["health"] == 1
        assert deleted["devices"] == 1 and deleted["evidence"] == 2
        assert deleted["batches"] == 0  # 400 days kept: the ledger outlives the data
        rows = await store.fetch("SELECT COUNT(*) AS n FROM alerts")
        assert rows[0]["n"] == 1
        rows = await store.fetch("SELECT COUNT(*) AS n FROM flow_hourly")
        assert rows[0]["n"] == 2
        assert (await store.apply_retention(now, DEFAULT_RETENTION_DAYS)) == dict.fromkeys(deleted, 0)
    finally:
        await store.close()


def _fields(event: object) -> dict[str, object]:
    import msgspec

    return msgspec.structs.asdict(event)  # type: ignore[arg-type]


def _shift(event: object, ts: float) -> dict[str, float]:
    names = _fields(event)
    return {k: ts for k in ("ts", "ts_start", "ts_end") if k in names}


def test_rows_roll_flows_up_per_device_and_hour() -> None:
    events = [flow(i) for i in range(10)] + [flow(3600 + i, src_mac="02:00:00:00:00:09") for i in range(2)]
    rows = batch_rows(new_batch("a", "s", 1, T0, events), T0)
    by_key = {(r[1], r[2]): r[3:] for r in rows.flows}
    hour0 = T0 - T0 % 3600
    assert by_key[("02:00:00:00:00:01", hour0)] == (10, 100, 120, 10_000, 50_000)
    assert by_key[("02:00:00:00:00:fe", hour0)] == (10, 120, 100, 50_000, 10_000)
    assert by_key[("02:00:00:00:00:09", hour0 + 3600)] == (2, 20, 24, 2000, 10_000)
    assert rows.counts == {"flow": 12, "device": 0, "alert": 0, "health": 0, "obs": 0}


async def test_sqlite_store_refuses_missing_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StoreError, match="does not exist"):
        await make_store(str(tmp_path / "nope" / "c.db")).open()


async def test_bad_postgres_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot connect"):
        await make_store("postgresql://postgres@127.0.0.1:1/none").open()
    with pytest.raises(StoreError, match="schema"):
        make_store("postgresql://postgres@127.0.0.1/test?schema=Bad;Name")


async def test_sqlite_group_commit_isolates_a_failing_job(sqlite_url: str) -> None:
    store = make_store(sqlite_url)
    await store.open()
    try:
        await store.add_agent("agent-1", "school-a", "s", T0)
        good = [batch_rows(new_batch("agent-1", "school-a", i, T0, [alert(i)]), time.time()) for i in range(1, 30)]
        results = await asyncio.gather(
            *(store.ingest(r) for r in good),
            # Runs in the same group as the batches and violates NOT NULL: only this job rolls back.
            store._execute([("INSERT INTO agents (agent_id) VALUES (?)", ("broken",))]),
            return_exceptions=True,
        )
        assert results[:-1] == [True] * 29
        assert isinstance(results[-1], StoreError) and "NOT NULL" in str(results[-1])
        rows = await store.fetch("SELECT COUNT(*) AS n FROM alerts")
        assert rows[0]["n"] == 29
    finally:
        await store.close()


async def test_collector_runs_retention_at_start(sqlite_url: str) -> None:
    from collector.app import run_collector

    from .conftest import config_for

    store = make_store(sqlite_url)
    await store.open()
    await store.add_agent("agent-1", "school-a", "s", T0)
    assert await store.ingest(batch_rows(new_batch("agent-1", "school-a", 1, T0, [alert(0)]), T0))
    await store.close()
    async with run_collector(config_for(sqlite_url)) as running:  # alerts are kept 365 days; T0 is 2023
        for _ in range(100):
            rows = await running.store.fetch("SELECT COUNT(*) AS n FROM alerts")
            if rows[0]["n"] == 0:
                break
            await asyncio.sleep(0.05)
        assert rows[0]["n"] == 0
