"""The agent's real shipping path (telemetry.shipper) into a real collector on loopback."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp

from collector.app import run_collector
from collector.cli import agent_config_text
from telemetry.config import ShipperConfig
from telemetry.shipper import ship_events
from telemetry.signing import generate_secret

from .conftest import Harness, alert, config_for, device, flow, health


async def test_shipped_events_land_once_and_are_queryable(tmp_path: Path) -> None:
    async with run_collector(config_for(str(tmp_path / "c.db"))) as running, aiohttp.ClientSession() as session:
        h = Harness(running, session, {})
        secret = generate_secret()
        await running.store.add_agent("gw-school-a", "school-a", secret, time.time())
        path = tmp_path / "agent.toml"
        path.write_text(agent_config_text(running.url, "gw-school-a", secret, "school-a", "spool"))
        config = ShipperConfig.from_toml(path)
        events = (
            [flow(i) for i in range(3000)]
            + [device(f"02:00:00:00:01:{i:02x}") for i in range(40)]
            + [alert(i) for i in range(5)]
            + [health()]
        )
        result = await ship_events(events, config, give_up_after=30)
        assert (result.acked_events, result.spooled_events, result.rejected_batches) == (len(events), 0, 0)
        token = await h.token("viewer", ["school-a"])
        status, body = await h.get("/api/v1/devices?limit=1000", token)
        assert (status, body["total"]) == (200, 40)
        status, body = await h.get("/api/v1/alerts", token)
        assert body["total"] == 5
        rows = await running.store.fetch("SELECT SUM(events) AS n, COUNT(*) AS b FROM batches")
        assert rows[0]["n"] == len(events)
        print(f"shipper -> collector: {len(events)} events in {rows[0]['b']} batches, all acknowledged")
        # Revoked: the shipper keeps the batch spooled and counts the refusal by the collector's reason.
        assert await running.store.revoke_agent("gw-school-a", time.time())
        refused = await ship_events([alert(99)], config, give_up_after=2)
        assert refused.acked_events == 0 and refused.spooled_events == 1
        assert refused.auth_refused.get("revoked_agent", 0) >= 1
