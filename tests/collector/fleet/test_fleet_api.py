"""Fleet operator API and CLI as a separate process: listing, promote, roles, viewer scope, bad input."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from collector.app import create_app, run_collector
from collector.fleet import FLEET, setup_fleet
from telemetry import bundle as tb
from telemetry.signing import sign
from tests.collector.conftest import Harness, config_for, flow

REPO = Path(__file__).resolve().parents[3]


def fleet_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector.fleet", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Harness, Path, str]]:
    key = tmp_path / "bundle.key"
    done = await asyncio.to_thread(fleet_cli, "keygen", "--out", str(key))
    assert done.returncode == 0, done.stderr
    public = done.stdout.strip().rsplit(" ", 1)[-1]
    db = str(tmp_path / "collector.db")
    config = config_for(db)
    app = create_app(config)
    setup_fleet(app, public)
    async with run_collector(config, app) as running, aiohttp.ClientSession() as session:
        yield Harness(running, session, {}), key, db


async def _call(h: Harness, method: str, path: str, token: str, **kw: Any) -> tuple[int, Any]:
    async with h.session.request(method, f"{h.url}{path}", headers={"Authorization": f"Bearer {token}"}, **kw) as r:
        return r.status, await r.json(content_type=None)


async def test_cli_process_publish_then_api(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    h, key, db = served
    folder = tmp_path / "content" / "rules"
    folder.mkdir(parents=True)
    (folder / "a.rules").write_text('alert tcp any any -> any any (msg:"a"; content:"a"; sid:5; rev:1;)\n')
    (tmp_path / "content" / ".git").mkdir()
    (tmp_path / "content" / ".git" / "HEAD").write_text("hidden files are left out\n")
    await h.agent("school-a", "a1")
    await h.agent("hall", "h1")
    await h.running.app[FLEET].set_group("schools", ["school-a"])
    args = ["publish", str(tmp_path / "content"), "--group", "schools", "--key", str(key), "--db", db]
    done = await asyncio.to_thread(fleet_cli, *args, "--version", "s1", "--percent", "0", "--canary", "a1")
    assert done.returncode == 0, done.stderr
    bad = await asyncio.to_thread(
        fleet_cli, "publish", str(tmp_path / "nope"), "--site", "x", "--key", str(key), "--db", db
    )
    assert bad.returncode == 2 and "not a folder" in bad.stderr

    admin, analyst = await h.token("admin"), await h.token("analyst")
    viewer = await h.token("viewer", ["hall"])
    status, body = await _call(h, "GET", "/api/v1/bundles", analyst)
    assert status == 200 and [b["version"] for b in body["items"]] == ["s1"]
    assert body["items"][0]["files"] == 1 and body["items"][0]["assigned"][0]["percent"] == 0
    assert body["groups"] == {"schools": ["school-a"]}

    status, body = await _call(h, "GET", "/api/v1/bundles/status", viewer)
    assert status == 200 and [r["agent_id"] for r in body["items"]] == ["h1"]

    assert (await _call(h, "POST", "/api/v1/bundles/promote?group=schools", analyst))[0] == 403
    assert (await _call(h, "POST", "/api/v1/bundles/promote?group=nobody", admin))[0] == 404
    status, body = await _call(h, "POST", "/api/v1/bundles/promote", admin)
    assert status == 400 and body["field"] == "group"
    assert (await _call(h, "POST", "/api/v1/bundles/promote?group=schools", admin))[0] == 200

    listed = await asyncio.to_thread(fleet_cli, "list", "--json", "--db", db)
    rows = json.loads(listed.stdout)
    assert rows[0]["version"] == "s1" and "schools@100%" in rows[0]["assigned"]
    st = await asyncio.to_thread(fleet_cli, "status", "--json", "--db", db)
    by_agent = {r["agent_id"]: r for r in json.loads(st.stdout)}
    assert by_agent["a1"]["assigned_version"] == "s1" and by_agent["h1"]["assigned_version"] is None
    assert by_agent["a1"]["in_sync"] is False  # no health event has reported s1 yet


async def test_upload_refusals_name_the_problem(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    h, key, _ = served
    admin = await h.token("admin")
    other_pem, _ = tb.generate_key()
    forged = tb.build({"rules/a.rules": b"x\n"}, "f1", 0.0, tb.load_private_key(other_pem))
    status, body = await _call(h, "POST", "/api/v1/bundles?group=g", admin, data=forged)
    assert status == 422 and body["error"] == "bad_signature"
    good = tb.build({"rules/a.rules": b"x\n"}, "g1", 0.0, tb.load_private_key(key.read_bytes()))
    status, body = await _call(h, "POST", "/api/v1/bundles?group=g&site=s", admin, data=good)
    assert status == 400 and body["field"] == "group"
    status, body = await _call(h, "POST", "/api/v1/bundles?group=g&percent=150", admin, data=good)
    assert status == 400 and body["field"] == "percent"
    status, body = await _call(h, "PUT", "/api/v1/fleet/groups/g", admin, data=b"[1]")
    assert status == 400 and body["field"] == "body"
    audit = await h.store.fetch("SELECT path, status FROM audit WHERE path LIKE '/api/v1/bundles%' ORDER BY id")
    assert [r["status"] for r in audit] == [422, 400, 400]


async def test_agent_polls_are_rate_limited_apart_from_ingest(tmp_path: Path) -> None:
    config = config_for(str(tmp_path / "c.db"), rate=1.0, burst=2)
    app = create_app(config)
    setup_fleet(app)
    async with run_collector(config, app) as running, aiohttp.ClientSession() as session:
        h = Harness(running, session, {})
        agent = await h.agent("site-a", "agent-r")
        statuses = []
        for _ in range(4):
            headers = sign(agent.agent_id, agent.secret, b"", time.time())
            async with session.get(f"{h.url}/fleet/v1/assignment", headers=headers) as r:
                statuses.append(r.status)
                if r.status == 429:
                    assert int(r.headers["Retry-After"]) >= 1 and (await r.json())["error"] == "rate_limited"
        assert statuses[:2] == [200, 200] and 429 in statuses[2:]
        assert (await h.send(agent, [flow(1)]))["status"] == "ok"  # ingest has its own bucket
