"""Every event `veille replay` emits on the fixtures carries exactly the fields the README documents."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from agent.pipeline import PipelineConfig, replay_events

REPO = Path(__file__).resolve().parents[2]
COMMON = {"type", "ts", "src_mac", "dst_mac", "src", "dst", "sport", "dport", "proto", "community_id", "pkt"}
# Types whose documented fields appear only with some messages (SSH: KEXINIT fields per role).
PARTIAL = {"ssh"}


def _rows() -> dict[str, set[str]]:
    rows = {}
    for line in (REPO / "README.md").read_text().splitlines():
        m = re.match(r"^\| `([a-z_0-9]+)` \| (.*) \|$", line)
        if m:
            cell = re.sub(r"\([^()]*\)", "", m.group(2))
            rows[m.group(1)] = set(re.findall(r"`([a-z_0-9]+)`", cell))
    return rows


def _paragraph_fields(name: str) -> set[str]:
    text = (REPO / "README.md").read_text()
    m = re.search(rf"\*\*`{name}`\*\*(.*?)(?:\n\n)", text, re.S)
    assert m, name
    return set(re.findall(r"`([a-z_0-9]+)`", re.sub(r"\([^()]*\)", "", m.group(1))))


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    caps = ["school_morning.pcap", "ipv6_only.pcap", "vlan.pcap", "lan_attacks.pcap", "malformed.pcap"]
    return list(replay_events([str(REPO / "pcaps" / c) for c in caps], PipelineConfig()))


def test_observation_fields_match_the_readme(events: list[dict[str, Any]]) -> None:
    rows = _rows()
    seen = set()
    for e in events:
        t = e["type"]
        if t not in rows:
            continue
        seen.add(t)
        keys = set(e)
        documented = COMMON | rows[t]
        assert keys <= documented, f"{t} has undocumented fields {keys - documented}"
        if t not in PARTIAL:
            assert keys == documented, f"{t} lacks documented fields {documented - keys}"
    assert seen >= {
        "dhcp",
        "dhcp6",
        "dns",
        "nbns",
        "ssdp",
        "http",
        "tls_client",
        "tls_server",
        "ssh",
        "tcp_syn",
        "arp",
        "ndp",
    }


def test_flow_and_stats_fields_match_the_readme(events: list[dict[str, Any]]) -> None:
    flow_doc = _paragraph_fields("flow") - {
        "tcp",
        "udp",
        "icmp",
        "icmp6",
        "fin",
        "rst",
        "idle",
        "active",
        "eof",
        "evict",
    }
    flow_doc -= {"dhcp", "dhcp6", "dns", "mdns", "llmnr", "nbns", "ssdp", "http", "tls", "quic", "ssh"}
    flows = [e for e in events if e["type"] == "flow"]
    assert flows
    for f in flows:
        assert set(f) - {"type"} == flow_doc
    stats = events[-1]
    assert stats["type"] == "stats"
    assert set(stats) - {"type"} == _paragraph_fields("stats")
