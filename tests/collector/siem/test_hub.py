"""The SIEM hub on a real collector app: wire batches to EVE in a file, to a webhook, counted failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from collector.app import create_app, run_collector
from collector.siem import SIEM, SiemConfig, SiemConfigError, build_sinks, publish_batch, setup_siem
from telemetry.eve import EveConverter
from tests.collector.conftest import config_for
from tests.collector.siem.conftest import wire_batch
from tests.telemetry import eve_reader


async def test_batches_through_a_running_collector(tmp_path: Path, lan_events: list[dict[str, Any]]) -> None:
    got: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.Response(status=204)

    hook_app = web.Application()
    hook_app.router.add_post("/hook", receive)
    hook = TestServer(hook_app, host="127.0.0.1")
    await hook.start_server()
    eve_file = tmp_path / "eve.json"
    siem = {
        "file": {"path": str(eve_file)},
        "webhook": {"url": str(hook.make_url("/hook")), "dead_letter": str(tmp_path / "dead.jsonl"), "max_severity": 1},
    }
    app = create_app(config_for(str(tmp_path / "c.db")))
    assert setup_siem(app, siem) is not None
    half = len(lan_events) // 2
    batches = [wire_batch(lan_events[:half], seq=1), wire_batch(lan_events[half:], seq=2)]
    async with run_collector(config_for(str(tmp_path / "c.db")), app) as running:
        async with aiohttp.ClientSession() as s, s.get(f"{running.url}/healthz") as r:
            assert r.status == 200
        for batch in batches:
            publish_batch(running.app, batch)
        await running.app[SIEM].flush()
        hub = running.app[SIEM]
        assert hub.errors == {} and hub.dropped == 0
    await hook.close()

    records = eve_reader.read_lines(eve_file.read_text())
    converter = EveConverter(host="agent-1", site="school-a")
    expected = [r for b in batches for e in b.events if (r := converter.convert(e)) is not None]
    assert records == json.loads(json.dumps(expected))
    assert not [p for r in records for p in eve_reader.problems(r)]
    # the wire drops a flow's community_id; EVE restores it, so flows and their observations share a flow_id
    flows = {r["community_id"]: r["flow_id"] for r in records if r["event_type"] == "flow"}
    dns = [r for r in records if r["event_type"] == "dns" and r.get("community_id") in flows]
    assert dns and all(flows[r["community_id"]] == r["flow_id"] for r in dns)
    high = [r for r in records if r["event_type"] == "alert" and r["alert"]["severity"] == 1]
    assert got == high and len(high) >= 1
    devices = [r for r in records if r["event_type"] == "veille_device"]
    assert devices and all({"type", "vendor", "os", "confidence"} <= set(r["veille"]["device"]) for r in devices)


def test_config_errors_name_the_key() -> None:
    with pytest.raises(SiemConfigError, match=r"siem\.syslog\.port: required"):
        build_sinks(SiemConfig.from_mapping({"syslog": {"host": "127.0.0.1"}}))
    with pytest.raises(SiemConfigError, match=r"siem\.file\.rotate: unknown key"):
        build_sinks(SiemConfig.from_mapping({"file": {"path": "x", "rotate": 1}}))
    with pytest.raises(SiemConfigError, match=r"siem\.kafka: unknown key"):
        SiemConfig.from_mapping({"kafka": {}})
    assert build_sinks(SiemConfig()) == []
