"""agent.fleet against a real collector on loopback: config errors, settings merge, jitter, failures kept apart."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.fleet import BundlePoller, FleetConfig, FleetConfigError, bundle_files, merge_settings
from collector.app import create_app, run_collector
from collector.fleet import FLEET, setup_fleet
from telemetry import bundle as tb
from tests.collector.conftest import Harness, config_for

RULE = b'alert tcp any any -> any 80 (msg:"v"; content:"x"; sid:1; rev:1;)\n'


def test_config_errors_name_the_key() -> None:
    _, public = tb.generate_key()
    base = {"url": "http://127.0.0.1:1", "agent_id": "a", "secret": "s"}
    ok = FleetConfig.from_mapping({"public_key": public, "state_dir": "/x", "pin": ["home_net"]}, base)
    assert ok.interval == 300.0 and ok.pin == ("home_net",)
    cases = [
        ({"state_dir": "/x"}, "fleet.public_key"),
        ({"public_key": "AAAA", "state_dir": "/x"}, "fleet.public_key"),
        ({"public_key": public, "state_dir": "/x", "interval": 0}, "fleet.interval"),
        ({"public_key": public, "state_dir": "/x", "jitter": 2}, "fleet.jitter"),
        ({"public_key": public, "state_dir": "/x", "pin": ["bpf"]}, "fleet.pin"),
        ({"public_key": public, "state_dir": "/x", "colour": "red"}, "fleet.colour"),
    ]
    for table, key in cases:
        with pytest.raises(FleetConfigError, match=key.replace(".", r"\.")):
            FleetConfig.from_mapping(table, base)
    with pytest.raises(FleetConfigError, match=r"fleet\.secret"):
        FleetConfig.from_mapping({"public_key": public, "state_dir": "/x"}, {"url": "u", "agent_id": "a"})


def test_merge_rule_central_wins_unless_pinned() -> None:
    local = {"privacy_profile": "full", "home_net": ["192.0.2.0/24"], "resolvers": ["192.0.2.53"]}
    central = {
        "privacy_profile": "pseudonymised",
        "home_net": ["198.51.100.0/24"],
        "closed_segments": ["203.0.113.0/28"],
    }
    merged = merge_settings(local, central, pin=["home_net"])
    assert merged == {
        "privacy_profile": "pseudonymised",
        "home_net": ["192.0.2.0/24"],
        "resolvers": ["192.0.2.53"],
        "closed_segments": ["203.0.113.0/28"],
    }


def test_jitter_stays_within_the_interval_share() -> None:
    _, public = tb.generate_key()
    cfg = FleetConfig("http://127.0.0.1:1", "a", "s", public, "/nonexistent", interval=100.0, jitter=0.2)
    poller = BundlePoller(cfg, lambda p: True, rng=random.Random(7))
    delays = [poller.next_delay() for _ in range(500)]
    assert all(100.0 <= d <= 120.0 for d in delays)
    assert max(delays) - min(delays) > 15.0  # spread, not one fixed offset


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[tuple[Harness, Any, str]]:
    pem, public = tb.generate_key()
    config = config_for(str(tmp_path / "collector.db"))
    app = create_app(config)
    setup_fleet(app, public)
    async with run_collector(config, app) as running, aiohttp.ClientSession() as session:
        yield Harness(running, session, {}), tb.load_private_key(pem), public


async def _publish(h: Harness, key: Any, files: dict[str, bytes], version: str, site: str) -> str:
    archive = tb.build(files, version, time.time(), key)
    fleet = h.running.app[FLEET]
    await fleet.add_bundle(archive, tb.digest(archive), tb.read_manifest(archive), time.time())
    await fleet.assign("site", site, tb.digest(archive), [], 100, time.time())
    return tb.digest(archive)


def _poller(h: Harness, agent: Any, public: str, state: Path, reload: Any, keep: int = 2) -> BundlePoller:
    cfg = FleetConfig.from_mapping(
        {"public_key": public, "state_dir": str(state), "keep": keep},
        {"url": h.url, "agent_id": agent.agent_id, "secret": agent.secret},
    )
    return BundlePoller(cfg, reload)


async def test_async_reload_prunes_old_bundles_and_files_layout(collector, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    h, key, public = collector
    agent = await h.agent("site-a", "agent-a")
    seen: list[Path] = []

    async def reload(path: Path) -> bool:
        await asyncio.sleep(0)
        seen.append(path)
        return bool(bundle_files(path).rules)

    poller = _poller(h, agent, public, tmp_path / "state", reload, keep=2)
    try:
        for n in range(4):
            files = {
                "rules/a.rules": RULE + f"# {n}\n".encode(),
                "ioc/hosts.txt": b"x.example\n",
                "fingerprints/d.tsv": b"1\n",
            }
            await _publish(h, key, files, f"v{n}", "site-a")
            assert await poller.poll_once() == "updated"
        assert poller.running_version == "v3"
        kept = sorted(p.name for p in (tmp_path / "state" / "bundles").iterdir())
        assert len(kept) == 2 and kept[-1].startswith("v3-") and kept[0].startswith("v2-")
        layout = bundle_files(seen[-1])
        assert [Path(p).name for p in (*layout.rules, *layout.ioc, *layout.fingerprints)] == [
            "a.rules",
            "hosts.txt",
            "d.tsv",
        ]
    finally:
        await poller.close()


async def test_reload_that_raises_and_archive_changed_in_the_database(collector, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    h, key, public = collector
    agent = await h.agent("site-b", "agent-b")
    calls: list[Path] = []

    def reload(path: Path) -> bool:
        calls.append(path)
        if "boom" in (path / "rules" / "a.rules").read_text():
            raise RuntimeError("engine crashed")
        return True

    poller = _poller(h, agent, public, tmp_path / "state", reload)
    try:
        await _publish(h, key, {"rules/a.rules": RULE}, "good", "site-b")
        assert await poller.poll_once() == "updated"
        await _publish(h, key, {"rules/a.rules": b"boom\n"}, "boom", "site-b")
        assert await poller.poll_once() == "refused"
        assert poller.running_version == "good" and "RuntimeError: engine crashed" in (poller.state.last_error or "")
        assert not calls[-1].exists()  # the refused bundle's folder is gone, the running one stays
        assert poller.running_path is not None and poller.running_path.is_dir()

        # the stored archive replaced behind the manifest's back: the digest no longer matches
        digest = await _publish(h, key, {"rules/a.rules": RULE + b"# v3\n"}, "v3", "site-b")
        other = tb.build({"rules/a.rules": b"pass\n"}, "v3", 0.0, key)
        await h.store._execute([("UPDATE fleet_bundles SET archive = ? WHERE digest = ?", (other, digest))])
        assert await poller.poll_once() == "refused"
        assert "digest_mismatch" in (poller.state.last_error or "")
        assert poller.running_version == "good"
    finally:
        await poller.close()


async def test_collector_down_is_an_error_not_a_change(tmp_path: Path) -> None:
    _, public = tb.generate_key()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        cfg = FleetConfig(f"http://127.0.0.1:{port}", "a", "s", public, str(tmp_path), timeout=2.0)
        poller = BundlePoller(cfg, lambda p: True)
        try:
            assert await poller.poll_once() == "error"
            assert poller.running_version is None and "ClientConnectorError" in (poller.state.last_error or "")
        finally:
            await poller.close()


async def test_run_stops_when_asked(collector, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    h, key, public = collector
    agent = await h.agent("site-c", "agent-c")
    await _publish(h, key, {"rules/a.rules": RULE}, "r1", "site-c")
    poller = _poller(h, agent, public, tmp_path / "state", lambda p: True)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    for _ in range(100):
        if poller.running_version == "r1":
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert poller.running_version == "r1"
