"""Community ID v1 against Arkime's session documents (a hasher nobody here wrote)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from agent.pipeline import PipelineConfig, replay_events
from capture.community_id import community_id


def _b(ip: str) -> bytes:
    return ipaddress.ip_address(ip).packed


def test_order_does_not_matter() -> None:
    a = community_id(_b("192.0.2.1"), _b("198.51.100.7"), 6, 40000, 443)
    b = community_id(_b("198.51.100.7"), _b("192.0.2.1"), 6, 443, 40000)
    assert a == b and a.startswith("1:")


def test_seed_changes_the_hash() -> None:
    assert community_id(_b("192.0.2.1"), _b("192.0.2.2"), 17, 1, 2) != community_id(
        _b("192.0.2.1"), _b("192.0.2.2"), 17, 1, 2, seed=1
    )


def test_icmp_echo_and_reply_hash_alike() -> None:
    req = community_id(_b("192.0.2.1"), _b("192.0.2.2"), 1, 8, 0)
    rep = community_id(_b("192.0.2.2"), _b("192.0.2.1"), 1, 0, 0)
    assert req == rep


@pytest.mark.corpora
def test_flows_match_arkime_community_ids(corpora: Path) -> None:
    agree = total = 0
    misses = []
    for test in sorted(corpora.glob("*/upstream/*.test")):
        name = test.name.split(".test")[0]
        if test.parent.parent.name == "ja4":
            pcap = corpora / "ja4" / "pcap" / name.replace(".arkime", "")
        else:
            pcap = corpora / "protocols" / "pcap" / (name.split(".pcap")[0] + ".pcap")
        if not pcap.exists():
            continue
        doc = json.loads(test.read_text())
        ours = {}
        for e in replay_events([str(pcap)], PipelineConfig(inventory=False, fingerprints=False)):
            if e["type"] == "flow":
                p = {"tcp": 6, "udp": 17}.get(e["proto"], 0)
                ours[(p, e["src"], e["sport"], e["dst"], e["dport"])] = e["community_id"]
                ours[(p, e["dst"], e["dport"], e["src"], e["sport"])] = e["community_id"]
        for s in doc.get("sessions3", []):
            body = s["body"]
            cid = (body.get("network") or {}).get("community_id")
            if not cid or body.get("ipProtocol") not in (6, 17):
                continue
            key = (
                body["ipProtocol"],
                str(ipaddress.ip_address(body["source"]["ip"])),
                body["source"].get("port"),
                str(ipaddress.ip_address(body["destination"]["ip"])),
                body["destination"].get("port"),
            )
            if key not in ours:
                continue  # a tunnelled or outer session Arkime keeps and we do not
            total += 1
            if ours[key] == cid:
                agree += 1
            else:
                misses.append((pcap.name, key, cid, ours[key]))
    print(f"Community ID vs Arkime: {agree}/{total}")
    assert total >= 10
    assert not misses
