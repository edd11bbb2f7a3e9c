"""`veille demo`: real processes (collector, two `veille replay --ship`), then the store compared with replays."""

from __future__ import annotations

import asyncio
import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from agent.pipeline import PipelineConfig, replay_events
from collector.store.sqlite import SqliteStore

from .demo_proc import REPO, ServingDemo, parse, run_demo

pytestmark = pytest.mark.slow


async def stored(db: Path) -> tuple[dict[str, set[str]], dict[str, Counter[int]], list[dict[str, object]]]:
    store = SqliteStore(db)
    await store.open()
    try:
        devices: dict[str, set[str]] = {}
        for row in await store.fetch("SELECT site, mac FROM devices"):
            devices.setdefault(row["site"], set()).add(row["mac"])
        alerts: dict[str, Counter[int]] = {}
        for row in await store.fetch("SELECT site, sid FROM alerts"):
            alerts.setdefault(row["site"], Counter())[int(row["sid"])] += 1
        return devices, alerts, await store.list_agents()
    finally:
        await store.close()


def test_demo_loads_both_captures_through_the_shipping_path(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    done = run_demo(workdir, "--exit-after-load")
    assert done.returncode == 0, done.stderr
    run = parse(done.stdout.splitlines())
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", run.url), done.stdout
    assert run.admin.startswith("vt_") and run.viewer.startswith("vt_")
    for site in ("ecole-jules-ferry", "mairie"):
        assert re.search(rf"{site}: shipped (\d+) events .*: \1 acknowledged, 0 spooled", done.stdout), done.stdout
    # Agent configs as `collector agent add --config-out` writes them, private to the user.
    config = workdir / "agent-mairie.toml"
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    assert tomllib.loads(config.read_text())["collector"]["site"] == "mairie"

    devices, alerts, agents = asyncio.run(stored(workdir / "collector.db"))
    pcaps = REPO / "pcaps"
    school = [e for e in replay_events([str(pcaps / "school_morning.pcap")]) if e["type"] == "device"]
    attacks_cfg = PipelineConfig(
        rule_files=[str(pcaps / "lan_attacks.rules")],
        variables={"HOME_NET": "[192.0.2.0/24]"},
        ioc_files=[str(pcaps / "lan_attacks.iocs.txt")],
        detections={"dhcp_servers": ["192.0.2.1"], "gateways": ["192.0.2.1"], "resolvers": ["192.0.2.1"]},
    )
    attacks = list(replay_events([str(pcaps / "lan_attacks.pcap")], attacks_cfg))
    expected_alerts = Counter(int(e["sid"]) for e in attacks if e["type"] == "alert")
    print(
        f"\ndemo stored {len(devices['ecole-jules-ferry'])} + {len(devices['mairie'])} devices, "
        f"{sum(alerts['mairie'].values())} alerts; replay printed {len(school)} devices and "
        f"{sum(expected_alerts.values())} alerts"
    )
    assert devices["ecole-jules-ferry"] == {e["mac"] for e in school}
    assert devices["mairie"] == {e["mac"] for e in attacks if e["type"] == "device"}
    assert alerts["mairie"] == expected_alerts and sum(expected_alerts.values()) >= 10
    assert "ecole-jules-ferry" not in alerts
    assert {a["agent_id"]: a["site"] for a in agents} == {
        "agent-ecole-jules-ferry": "ecole-jules-ferry",
        "agent-mairie": "mairie",
    }
    assert all(a["rejected"] == 0 and a["events"] > 0 for a in agents)

    # Running it again in the same folder starts afresh; a folder it did not make is left alone.
    again = run_demo(workdir, "--exit-after-load")
    assert again.returncode == 0, again.stderr
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    refused = run_demo(other, "--exit-after-load")
    assert refused.returncode == 1 and "not made by `veille demo`" in refused.stderr
    assert (other / "notes.txt").read_text() == "keep me"


def test_demo_serves_until_sigterm(tmp_path: Path) -> None:
    demo = ServingDemo(tmp_path / "demo")
    try:
        import urllib.request

        with urllib.request.urlopen(f"{demo.run.url}/healthz", timeout=10) as resp:
            assert resp.status == 200
    finally:
        assert demo.stop() == 0
    assert "veille demo: stopped" in (demo.proc.stdout.read() if demo.proc.stdout else "")


def test_demo_bad_listen_is_a_usage_error(tmp_path: Path) -> None:
    done = run_demo(tmp_path / "d", "--listen", "nowhere")
    assert done.returncode == 2 and "--listen" in done.stderr


def test_demo_port_in_use_is_named(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_demo(tmp_path / "d", "--listen", f"127.0.0.1:{port}")
    assert done.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in done.stderr
