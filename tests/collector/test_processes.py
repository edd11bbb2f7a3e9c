"""Two collector processes on one PostgreSQL, and the CLI as operators use it."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import aiohttp
import pytest

from collector.store import make_store
from telemetry.codec import compress, encode_batch, new_batch
from telemetry.config import ShipperConfig
from telemetry.signing import sign

from .conftest import T0, alert, drop_pg_schema, flow, new_pg_url, require_pg
from .procs import ServeProcess, cli, cli_json

AGENTS = 4
BATCHES = 40
FLOWS_PER_BATCH = 50


async def post(session: aiohttp.ClientSession, url: str, agent: dict[str, str], wire: bytes) -> int:
    return (await post_full(session, url, agent, wire))[0]


async def post_full(session: aiohttp.ClientSession, url: str, agent: dict[str, str], wire: bytes) -> tuple[int, bool]:
    # 503 (busy) and 429 are back-pressure a real shipper retries after a pause; do the same, boundedly.
    for attempt in range(20):
        headers = {"Content-Encoding": "zstd", **sign(agent["agent_id"], agent["secret"], wire, time.time())}
        async with session.post(f"{url}/api/v1/ingest", data=wire, headers=headers) as resp:
            body = await resp.json(content_type=None)
            if resp.status in (429, 503) and attempt < 19:
                await asyncio.sleep(0.1 * (attempt + 1))
                continue
            return resp.status, bool(body.get("duplicate"))
    raise AssertionError("unreachable")


@pytest.mark.slow
async def test_two_collector_processes_store_each_event_once() -> None:
    require_pg()
    db = new_pg_url()
    try:
        agents = [cli_json("agent", "add", "--site", f"site-{i % 2}", "--db", db) for i in range(AGENTS)]
        bodies = []
        for agent in agents:
            for seq in range(1, BATCHES + 1):
                events = [flow(seq * 100 + i, src_mac=f"02:00:00:00:{seq % 7:02x}:01") for i in range(FLOWS_PER_BATCH)]
                events.append(alert(seq))
                batch = new_batch(agent["agent_id"], agent["site"], seq, T0, events)
                bodies.append((agent, compress(encode_batch(batch))))
        async with ServeProcess("--db", db) as one, ServeProcess("--db", db) as two:
            assert one.url != two.url
            # Each batch is sent to both processes at the same moment, in a shuffled order.
            random.Random(7).shuffle(bodies)
            async with aiohttp.ClientSession() as session:
                answers = await asyncio.gather(
                    *(post_full(session, url, agent, wire) for agent, wire in bodies for url in (one.url, two.url))
                )
        assert {status for status, _ in answers} == {200}
        # One of the two copies of each batch was stored, the other answered as a duplicate.
        assert sum(dup for _, dup in answers) == len(bodies)
        store = make_store(db)
        await store.open()
        try:
            rows = await store.fetch("SELECT COUNT(*) AS n FROM batches")
            assert rows[0]["n"] == AGENTS * BATCHES
            rows = await store.fetch("SELECT COUNT(*) AS n FROM alerts")
            assert rows[0]["n"] == AGENTS * BATCHES
            rows = await store.fetch("SELECT SUM(flows) AS n, SUM(bytes_out) AS b FROM flow_hourly")
            # Every flow is rolled up for its source and for the gateway MAC.
            assert rows[0]["n"] == 2 * AGENTS * BATCHES * FLOWS_PER_BATCH
            assert rows[0]["b"] == AGENTS * BATCHES * FLOWS_PER_BATCH * (1000 + 5000)
            rows = await store.fetch("SELECT SUM(batches) AS n, SUM(events) AS e FROM agents")
            assert rows[0] == {"n": AGENTS * BATCHES, "e": AGENTS * BATCHES * (FLOWS_PER_BATCH + 1)}
            print(f"two collectors, {len(answers)} requests for {len(bodies)} batches: each stored once")
        finally:
            await store.close()
    finally:
        await drop_pg_schema(db)


async def test_cli_enrols_serves_and_revokes(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    out = tmp_path / "agent.toml"
    done = cli(
        "agent", "add", "--site", "library-1", "--db", db, "--config-out", str(out), "--url", "http://127.0.0.1:9"
    )
    assert done.returncode == 0, done.stderr
    assert "secret:" in done.stdout and "[collector]" in done.stdout
    assert out.stat().st_mode & 0o777 == 0o600
    shipper = ShipperConfig.from_toml(out)
    assert shipper.site == "library-1" and shipper.url == "http://127.0.0.1:9"
    token = cli_json("token", "add", "--role", "viewer", "--site", "library-1", "--db", db)
    assert token["token"].startswith("vt_") and token["sites"] == ["library-1"]
    bad = cli("token", "add", "--role", "viewer", "--db", db)
    assert bad.returncode == 2 and "--site" in bad.stderr
    async with ServeProcess("--db", db) as server, aiohttp.ClientSession() as session:
        agent = {"agent_id": shipper.agent_id, "secret": shipper.secret}
        batch = new_batch(shipper.agent_id, shipper.site, 1, T0, [alert(1)])
        assert await post(session, server.url, agent, compress(encode_batch(batch))) == 200
        async with session.get(
            f"{server.url}/api/v1/alerts", headers={"Authorization": f"Bearer {token['token']}"}
        ) as resp:
            assert (await resp.json())["total"] == 1
        # Revoked from another process while serving: refused at once.
        assert cli("agent", "revoke", shipper.agent_id, "--db", db).returncode == 0
        batch = new_batch(shipper.agent_id, shipper.site, 2, T0, [alert(2)])
        assert await post(session, server.url, agent, compress(encode_batch(batch))) == 403
        assert cli("token", "revoke", token["token_id"], "--db", db).returncode == 0
        async with session.get(
            f"{server.url}/api/v1/alerts", headers={"Authorization": f"Bearer {token['token']}"}
        ) as resp:
            assert resp.status == 401
    assert server.returncode == 0
    agents = cli_json("agent", "list", "--db", db)
    assert [(a["agent_id"], a["batches"], a["revoked_at"] is not None) for a in agents] == [(shipper.agent_id, 1, True)]
    assert cli("agent", "revoke", "agent-nobody", "--db", db).returncode == 1


def test_zero_config_serve_uses_a_file_in_the_current_folder(tmp_path: Path) -> None:
    async def run() -> str:
        async with ServeProcess(cwd=tmp_path) as server, aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/healthz") as resp:
                assert resp.status == 200
            return server.url

    url = asyncio.run(run())
    assert url.startswith("http://127.0.0.1:")
    assert (tmp_path / "veille-collector.db").is_file()
