"""Fixtures for collector tests: real SQLite files, a real PostgreSQL schema per test, a real server.

PostgreSQL: VEILLE_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/test); each test gets its own
schema, dropped afterwards. Unreachable -> skip with the reason, unless CI=true (then it is a failure).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from collector.app import RunningCollector, run_collector
from collector.auth import hash_token, new_token
from collector.config import CollectorConfig, Limits
from telemetry.codec import compress, encode_batch, new_batch
from telemetry.schema import (
    AlertEvent,
    DeviceEvent,
    DeviceName,
    Event,
    Evidence,
    FlowEvent,
    HealthEvent,
    OsGuess,
)
from telemetry.signing import generate_secret, sign

PG_URL = os.environ.get("VEILLE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
T0 = 1_700_000_000.0  # 2023-11-14: fixed event times, so results do not depend on the clock


def pg_reachable() -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(PG_URL, timeout=3)
        await conn.close()

    problem: list[str] = []

    def run() -> None:  # own thread: callers may be inside a running event loop
        try:
            asyncio.run(probe())
        except Exception as exc:  # any failure means "no server to test against"
            problem.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return problem[0] if problem else None


_PG_PROBLEM: list[str | None] = []


def require_pg() -> None:
    if not _PG_PROBLEM:
        _PG_PROBLEM.append(pg_reachable())
    problem = _PG_PROBLEM[0]
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL required in CI but unreachable at {PG_URL}: {problem}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {problem}")


def new_pg_url() -> str:
    schema = f"vtest_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}schema={schema}"


async def drop_pg_schema(url: str) -> None:
    schema = url.rsplit("schema=", 1)[1]
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database URL for each back-end."""
    if request.param == "sqlite":
        yield str(tmp_path / "collector.db")
        return
    require_pg()
    url = new_pg_url()
    yield url
    asyncio.run(drop_pg_schema(url))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return str(tmp_path / "collector.db")


@dataclass
class Agent:
    agent_id: str
    site: str
    secret: str


@dataclass
class Harness:
    """A running collector plus helpers to enrol agents, issue tokens and send batches."""

    running: RunningCollector
    session: aiohttp.ClientSession
    seqs: dict[str, int]

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def store(self) -> Any:
        return self.running.store

    async def agent(self, site: str, agent_id: str | None = None) -> Agent:
        agent = Agent(agent_id or f"agent-{secrets.token_hex(3)}", site, generate_secret())
        await self.store.add_agent(agent.agent_id, site, agent.secret, time.time())
        return agent

    async def token(self, role: str, sites: list[str] | None = None) -> str:
        token_id, token = new_token()
        await self.store.add_token(token_id, role, role, sites or [], hash_token(token), time.time())
        return token

    def batch_body(
        self, agent: Agent, events: list[Event], seq: int | None = None, site: str | None = None
    ) -> tuple[int, bytes]:
        if seq is None:
            seq = self.seqs.get(agent.agent_id, 0) + 1
        self.seqs[agent.agent_id] = max(seq, self.seqs.get(agent.agent_id, 0))
        batch = new_batch(agent.agent_id, site or agent.site, seq, T0, events)
        return seq, encode_batch(batch)

    async def post(
        self,
        agent: Agent,
        body: bytes,
        encoding: str = "zstd",
        now: float | None = None,
        secret: str | None = None,
        headers: dict[str, str] | None = None,
        compressed: bool = False,
    ) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
        wire = body if compressed else compress(body, encoding)
        signed = sign(agent.agent_id, secret or agent.secret, wire, time.time() if now is None else now)
        all_headers = {"Content-Encoding": encoding, "Content-Type": "application/msgpack", **signed}
        all_headers.update(headers or {})
        async with self.session.post(f"{self.url}/api/v1/ingest", data=wire, headers=all_headers) as resp:
            try:
                payload = await resp.json(content_type=None)
            except Exception:
                payload = {"raw": await resp.text()}
            return resp.status, payload, resp.headers

    async def send(self, agent: Agent, events: list[Event], seq: int | None = None) -> dict[str, Any]:
        _, body = self.batch_body(agent, events, seq)
        status, payload, _ = await self.post(agent, body)
        assert status == 200, payload
        return payload

    async def get(self, path: str, token: str | None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.get(f"{self.url}{path}", headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)


def config_for(db: str, **limits: Any) -> CollectorConfig:
    return CollectorConfig(host="127.0.0.1", port=0, db=db, limits=replace(Limits(), **limits))


@pytest.fixture
async def harness(db_url: str) -> AsyncIterator[Harness]:
    async with run_collector(config_for(db_url)) as running, aiohttp.ClientSession() as session:
        yield Harness(running, session, {})


@pytest.fixture
async def sqlite_harness(sqlite_url: str) -> AsyncIterator[Harness]:
    async with run_collector(config_for(sqlite_url)) as running, aiohttp.ClientSession() as session:
        yield Harness(running, session, {})


# ---- events -------------------------------------------------------------------------------------------
def flow(i: int, src_mac: str = "02:00:00:00:00:01", bytes_fwd: int = 1000, bytes_rev: int = 5000) -> FlowEvent:
    return FlowEvent(
        ts_start=T0 + i,
        ts_end=T0 + i + 1,
        proto="tcp",
        src="192.0.2.10",
        sport=40000 + i % 20000,
        dst="198.51.100.7",
        dport=443,
        pkts_fwd=10,
        pkts_rev=12,
        bytes_fwd=bytes_fwd,
        bytes_rev=bytes_rev,
        src_mac=src_mac,
        dst_mac="02:00:00:00:00:fe",
        app="tls",
    )


def device(
    mac: str,
    last_seen: float = T0 + 60,
    vendor: str = "Apple",
    device_type: str = "phone",
    evidence_value: str = "1,121,3,6,15,119,252",
) -> DeviceEvent:
    return DeviceEvent(
        mac=mac,
        first_seen=T0,
        last_seen=last_seen,
        vendor=vendor,
        ips=["192.0.2.10"],
        names=[DeviceName("pupil-ipad", "dhcp")],
        os=OsGuess("iOS", "17"),
        device_type=device_type,
        confidence=0.8,
        evidence=[
            Evidence("dhcp", evidence_value, {"os": "iOS"}, 0.6, T0, last_seen),
            Evidence("oui", mac[:8], {"vendor": vendor}, 0.3, T0, T0),
        ],
    )


def alert(i: int, sid: int = 2100498, severity: int = 2, src_mac: str = "02:00:00:00:00:01") -> AlertEvent:
    return AlertEvent(
        ts=T0 + i,
        sid=sid,
        msg="GPL ATTACK_RESPONSE id check returned root",
        severity=severity,
        src="192.0.2.10",
        sport=40000,
        dst="198.51.100.7",
        dport=80,
        proto="tcp",
        src_mac=src_mac,
    )


def health(i: int = 0) -> HealthEvent:
    return HealthEvent(
        ts=T0 + i, packets=1000 * (i + 1), drops_kernel=3, cpu=12.5, rss=40_000_000, agent_version="0.1.0"
    )
