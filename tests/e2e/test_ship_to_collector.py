"""End to end with real processes on loopback: a replay shipped through the agent path lands in a
collector, and the collector's API answers with the same devices (and alerts) `veille replay` printed."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.collector_proc import cli, running_collector

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with running_collector(tmp_path) as c:
        yield c


def _enrol(c: dict[str, Any], site: str) -> Path:
    cfg = c["dir"] / f"{site}.toml"
    cli(
        "collector", "agent", "add", "--db", str(c["db"]), "--site", site, "--url", c["url"],
        "--config-out", str(cfg), "--spool-dir", str(c["dir"] / f"spool-{site}"), cwd=c["dir"],
    )  # fmt: skip
    return cfg


def _api(c: dict[str, Any], path: str) -> Any:
    req = urllib.request.Request(c["url"] + path, headers={"Authorization": f"Bearer {c['token']}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _replay(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run([PY, "-m", "veille", "replay", *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_shipped_replay_matches_the_printed_one(collector: dict[str, Any]) -> None:
    cfg = _enrol(collector, "ecole")
    pcap = str(REPO / "pcaps" / "school_morning.pcap")
    printed = _replay(pcap)
    ship = subprocess.run(
        [PY, "-m", "veille", "replay", pcap, "--ship", "--agent-config", str(cfg)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ship.returncode == 0, ship.stderr
    assert "0 spooled" in ship.stderr
    want = {d["mac"]: d for d in printed if d["type"] == "device"}
    got = {d["mac"]: d for d in _api(collector, "/api/v1/devices?limit=1000&site=ecole")["items"]}
    assert set(got) == set(want)
    for mac, d in want.items():
        assert got[mac]["device_type"] == d["device_type"], mac
        assert got[mac]["vendor"] == d["vendor"], mac
        assert sorted(got[mac]["ips"]) == sorted(d["ips"]), mac
    print(f"devices: {len(got)} in the collector == {len(want)} printed by replay")


def test_shipped_alerts_match_the_printed_ones(collector: dict[str, Any]) -> None:
    rules = REPO / "pcaps" / "lan_attacks.rules"
    if not rules.exists():
        pytest.skip("pcaps/lan_attacks.rules missing")
    cfg = _enrol(collector, "mairie")
    args = [str(REPO / "pcaps" / "lan_attacks.pcap"), "--rules", str(rules), "--home-net", "[192.0.2.0/24]"]
    printed = [e for e in _replay(*args) if e["type"] == "alert"]
    assert printed, "the attack capture should raise alerts"
    ship = subprocess.run(
        [PY, "-m", "veille", "replay", *args, "--ship", "--agent-config", str(cfg)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ship.returncode == 0, ship.stderr
    got = _api(collector, "/api/v1/alerts?limit=1000&site=mairie")["items"]
    assert sorted(a["sid"] for a in got) == sorted(a["sid"] for a in printed)
    print(f"alerts: {len(got)} in the collector == {len(printed)} printed by replay")
