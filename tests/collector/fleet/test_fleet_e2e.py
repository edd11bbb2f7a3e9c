"""Fleet end to end on loopback: a real collector (SQLite and PostgreSQL), the real CLI, real agent pollers.

Two agents in different groups each take their group's bundle; a bundle whose rules do not load is refused
by the daemon's own reload code and the old bundle keeps running; a forged bundle (signed by another key,
slipped into the database) is refused; a canary rollout reaches the canary first, then everyone; status
reports what each agent's health events say it runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from agent.config import AgentConfig, RulesSection
from agent.daemon import ReloadError, build_knowledge
from agent.fleet import BundlePoller, FleetConfig
from collector.app import create_app, run_collector
from collector.fleet import FLEET, setup_fleet
from collector.fleet import cli as fleet_cli
from telemetry import bundle as tb
from telemetry.schema import HealthEvent
from tests.collector.conftest import Harness, config_for


async def cli(argv: list[str]) -> int:
    """`veille collector bundle ...` in a thread (it runs its own event loop, as from a shell)."""
    return await asyncio.to_thread(fleet_cli.main, argv)


GOOD_RULE = 'alert tcp any any -> any 80 (msg:"{msg}"; content:"{content}"; sid:{sid}; rev:1;)\n'
BROKEN_RULE = "alert tcp any any -> (this is not a rule\n"


def write_bundle_dir(root: Path, name: str, rules: str, ioc: str = "bad.example.com\n") -> Path:
    folder = root / name
    (folder / "rules").mkdir(parents=True)
    (folder / "ioc").mkdir()
    (folder / "rules" / "site.rules").write_text(rules)
    (folder / "ioc" / "hosts.txt").write_text(ioc)
    return folder


def daemon_reload(loaded: list[Path]):  # type: ignore[no-untyped-def]
    """The daemon's reload code (agent.daemon.build_knowledge) on the bundle's files."""

    def reload(path: Path) -> bool:
        rules = sorted(str(p) for p in (path / "rules").glob("*.rules"))
        iocs = sorted(str(p) for p in (path / "ioc").glob("*"))
        config = dataclasses.replace(AgentConfig(), rules=RulesSection(files=rules, ioc_files=iocs))
        try:
            build_knowledge(config)
        except ReloadError:
            return False
        loaded.append(path)
        return True

    return reload


@pytest.fixture
async def fleet_harness(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[Harness, Path, str, str]]:
    key_file = tmp_path / "bundle.key"
    assert fleet_cli.main(["keygen", "--out", str(key_file)]) == 0
    public = tb.public_key_text(tb.load_private_key(key_file.read_bytes()).public_key())
    config = config_for(db_url)
    app = create_app(config)
    setup_fleet(app, public)
    async with run_collector(config, app) as running, aiohttp.ClientSession() as session:
        yield Harness(running, session, {}), key_file, public, db_url


def poller(h: Harness, agent, public: str, state: Path, loaded: list[Path]) -> BundlePoller:  # type: ignore[no-untyped-def]
    cfg = FleetConfig.from_mapping(
        {"public_key": public, "state_dir": str(state), "interval": 1.0},
        {"url": h.url, "agent_id": agent.agent_id, "secret": agent.secret},
    )
    return BundlePoller(cfg, daemon_reload(loaded))


async def test_two_groups_broken_and_forged_bundles(fleet_harness, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    h, key_file, public, db = fleet_harness
    school = await h.agent("school-a", "school-1")
    hall = await h.agent("townhall", "hall-1")
    fleet = h.running.app[FLEET]
    await fleet.set_group("schools", ["school-a"])
    await fleet.set_group("halls", ["townhall"])
    admin = await h.token("admin")
    analyst = await h.token("analyst")

    # schools: published by the CLI straight into the database the collector serves from
    school_dir = write_bundle_dir(tmp_path, "school", GOOD_RULE.format(msg="school", content="games", sid=1000001))
    args = ["publish", str(school_dir), "--group", "schools", "--key", str(key_file), "--version", "school-1"]
    assert await cli([*args, "--db", db]) == 0

    # halls: built by the CLI, uploaded through the API by an admin (an analyst may not)
    hall_dir = write_bundle_dir(tmp_path, "hall", GOOD_RULE.format(msg="hall", content="phish", sid=2000001))
    archive_file = tmp_path / "hall.tar.gz"
    assert (
        await cli(["build", str(hall_dir), "--key", str(key_file), "--version", "hall-1", "-o", str(archive_file)]) == 0
    )
    url = f"{h.url}/api/v1/bundles?group=halls"
    async with h.session.post(url, data=archive_file.read_bytes(), headers={"Authorization": f"Bearer {analyst}"}) as r:
        assert r.status == 403
    async with h.session.post(url, data=archive_file.read_bytes(), headers={"Authorization": f"Bearer {admin}"}) as r:
        assert r.status == 201, await r.text()
        assert (await r.json())["version"] == "hall-1"
    async with h.session.post(url, data=b"not a bundle", headers={"Authorization": f"Bearer {admin}"}) as r:
        assert r.status == 422 and (await r.json())["field"] == "body"

    school_loaded: list[Path] = []
    hall_loaded: list[Path] = []
    p_school = poller(h, school, public, tmp_path / "state-school", school_loaded)
    p_hall = poller(h, hall, public, tmp_path / "state-hall", hall_loaded)
    try:
        assert await p_school.poll_once() == "updated"
        assert await p_hall.poll_once() == "updated"
        assert (p_school.running_version, p_hall.running_version) == ("school-1", "hall-1")
        assert "games" in (school_loaded[-1] / "rules" / "site.rules").read_text()
        assert "phish" in (hall_loaded[-1] / "rules" / "site.rules").read_text()
        assert await p_school.poll_once() == "unchanged"

        # status from the agents' health events (real ingest)
        for agent, p in ((school, p_school), (hall, p_hall)):
            await h.send(agent, [HealthEvent(ts=time.time(), rules_version=p.running_version)])
        status, body = await h.get("/api/v1/bundles/status", admin)
        assert status == 200
        rows = {r["agent_id"]: r for r in body["items"]}
        assert rows["school-1"]["running_version"] == "school-1" and rows["school-1"]["in_sync"]
        assert rows["hall-1"]["assigned_version"] == "hall-1" and rows["hall-1"]["group"] == "halls"

        # a bundle whose rules do not load: refused by the reload path, the old one keeps running
        broken = write_bundle_dir(tmp_path, "broken", BROKEN_RULE)
        args = ["publish", str(broken), "--group", "schools", "--key", str(key_file), "--version", "school-2"]
        assert await cli([*args, "--db", db]) == 0
        assert await p_school.poll_once() == "refused"
        assert p_school.running_version == "school-1"
        assert p_school.running_path is not None and p_school.running_path.is_dir()
        assert "reload refused" in (p_school.state.last_error or "")
        assert await p_school.poll_once() == "refused"  # not downloaded again

        # a forged bundle (another key) slipped into the database: refused on signature
        other_pem, _ = tb.generate_key()
        forged = tb.build(
            {"rules/site.rules": b"pass ip any any -> any any (sid:9;)\n"},
            "evil-1",
            0.0,
            tb.load_private_key(other_pem),
        )
        await fleet.add_bundle(forged, tb.digest(forged), tb.read_manifest(forged), time.time())
        await fleet.assign("site", "townhall", tb.digest(forged), [], 100, time.time())
        assert await p_hall.poll_once() == "refused"
        assert "bad_signature" in (p_hall.state.last_error or "")
        assert p_hall.running_version == "hall-1"

        # a restarted agent knows what it runs
        again = poller(h, hall, public, tmp_path / "state-hall", [])
        assert again.running_version == "hall-1"
        await again.close()
    finally:
        await p_school.close()
        await p_hall.close()


async def test_canary_rollout_then_promote(fleet_harness, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    h, key_file, public, db = fleet_harness
    agents = [await h.agent(f"school-{c}", f"agent-{c}") for c in "abc"]
    fleet = h.running.app[FLEET]
    await fleet.set_group("schools", ["school-a", "school-b", "school-c"])
    v1 = write_bundle_dir(tmp_path, "v1", GOOD_RULE.format(msg="v1", content="one", sid=1))
    v2 = write_bundle_dir(tmp_path, "v2", GOOD_RULE.format(msg="v2", content="two", sid=1))
    base = ["--group", "schools", "--key", str(key_file), "--db", db]
    assert await cli(["publish", str(v1), "--version", "v1", *base]) == 0
    assert await cli(["publish", str(v2), "--version", "v2", "--canary", "agent-b", "--percent", "0", *base]) == 0
    pollers = [poller(h, a, public, tmp_path / a.agent_id, []) for a in agents]
    try:
        for p in pollers:
            assert await p.poll_once() == "updated"
        assert [p.running_version for p in pollers] == ["v1", "v2", "v1"]
        assert await cli(["promote", "--group", "schools", "--db", db]) == 0
        for p in pollers:
            await p.poll_once()
        assert [p.running_version for p in pollers] == ["v2", "v2", "v2"]
    finally:
        for p in pollers:
            await p.close()


async def test_site_settings_group_then_site(fleet_harness) -> None:  # type: ignore[no-untyped-def]
    h, _, public, _ = fleet_harness
    agent = await h.agent("school-a", "agent-s")
    admin = await h.token("admin")
    await h.running.app[FLEET].set_group("schools", ["school-a"])
    headers = {"Authorization": f"Bearer {admin}"}
    group_settings = {"privacy_profile": "pseudonymised", "resolvers": ["192.0.2.53"]}
    async with h.session.put(f"{h.url}/api/v1/fleet/settings/group/schools", json=group_settings, headers=headers) as r:
        assert r.status == 200
    async with h.session.put(
        f"{h.url}/api/v1/fleet/settings/site/school-a", json={"home_net": ["192.0.2.0/24"]}, headers=headers
    ) as r:
        assert r.status == 200
    async with h.session.put(f"{h.url}/api/v1/fleet/settings/site/school-a", json={"bogus": 1}, headers=headers) as r:
        assert r.status == 422 and "settings.bogus" in (await r.json())["detail"]
    bad = {"home_net": ["192.0.2.0/24", "not-a-net"]}
    async with h.session.put(f"{h.url}/api/v1/fleet/settings/site/school-a", json=bad, headers=headers) as r:
        assert r.status == 422 and "settings.home_net[1]" in (await r.json())["detail"]
    bad = {"privacy_profile": "everything"}
    async with h.session.put(f"{h.url}/api/v1/fleet/settings/site/school-a", json=bad, headers=headers) as r:
        assert r.status == 422 and "settings.privacy_profile" in (await r.json())["detail"]
    p = BundlePoller(
        FleetConfig.from_mapping(
            {"public_key": public, "state_dir": "/nonexistent-ok"},
            {"url": h.url, "agent_id": agent.agent_id, "secret": agent.secret},
        ),
        lambda path: True,
    )
    try:
        assert await p.poll_once() == "none"
        assert p.settings == {**group_settings, "home_net": ["192.0.2.0/24"]}
    finally:
        await p.close()


async def test_agent_routes_need_a_valid_signature(fleet_harness) -> None:  # type: ignore[no-untyped-def]
    h, _, public, _ = fleet_harness
    agent = await h.agent("school-a", "agent-x")
    async with h.session.get(f"{h.url}/fleet/v1/assignment") as r:
        assert r.status == 401
    p = BundlePoller(
        FleetConfig.from_mapping(
            {"public_key": public, "state_dir": "/nonexistent-ok"},
            {"url": h.url, "agent_id": agent.agent_id, "secret": "wrong"},
        ),
        lambda path: True,
    )
    try:
        assert await p.poll_once() == "error"
        assert "401" in (p.state.last_error or "")
    finally:
        await p.close()
