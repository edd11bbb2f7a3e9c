"""LAN hygiene detections on synthetic event sequences, and on pcaps/lan_attacks.pcap through the pipeline."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from agent.detections import (
    SID_ARP_NEW_MAC,
    SID_CLOSED_SEGMENT,
    SID_GATEWAY_MAC,
    SID_ROGUE_DHCP,
    SID_ROGUE_RESOLVER,
    SID_SCAN_HORIZONTAL,
    SID_SCAN_VERTICAL,
    LanConfig,
    LanDetector,
)

GW, GW_MAC = "192.0.2.1", "00:1b:54:0a:00:01"
EVIL_MAC = "2c:f0:5d:6e:7f:80"


def arp(ts: float, ip: str, mac: str, op: int = 2) -> dict[str, Any]:
    return {
        "type": "arp",
        "ts": ts,
        "op": op,
        "sender_ip": ip,
        "sender_mac": mac,
        "target_ip": "192.0.2.50",
        "target_mac": "02:00:00:00:00:50",
        "src_mac": mac,
    }


def dhcp(ts: float, name: str, src: str, mac: str) -> dict[str, Any]:
    return {
        "type": "dhcp",
        "ts": ts,
        "msg_type_name": name,
        "src": src,
        "src_mac": mac,
        "dst": "255.255.255.255",
        "server_id": src if name in ("offer", "ack") else None,
        "sport": 67,
        "dport": 68,
        "proto": "udp",
    }


def flow(ts: float, src: str, dst: str, dport: int, flags: str = "S", rev: int = 0) -> dict[str, Any]:
    return {
        "type": "flow",
        "ts_start": ts,
        "ts_end": ts + 0.1,
        "proto": "tcp",
        "src": src,
        "sport": 50000,
        "dst": dst,
        "dport": dport,
        "pkts_fwd": 1,
        "pkts_rev": rev,
        "tcp_flags": flags,
    }


def sids(det: LanDetector, events: list[dict[str, Any]]) -> list[int]:
    return [a.sid for e in events for a in det.observe(e)]


def test_rogue_dhcp() -> None:
    det = LanDetector({"dhcp_servers": [GW]})
    seq = [
        dhcp(1, "discover", "0.0.0.0", "02:00:00:00:00:09"),
        dhcp(1.1, "offer", GW, GW_MAC),
        dhcp(1.2, "offer", "192.0.2.250", "98:de:d0:11:22:33"),
        dhcp(1.3, "ack", "192.0.2.250", "98:de:d0:11:22:33"),
    ]
    alerts = [a for e in seq for a in det.observe(e)]
    assert [a.sid for a in alerts] == [SID_ROGUE_DHCP]
    assert alerts[0].classtype == "rogue-dhcp" and alerts[0].severity == 1 and alerts[0].src == "192.0.2.250"
    # allowed by MAC too; no allowed list means the detection is off
    assert sids(LanDetector({"dhcp_servers": [GW, "98:DE:D0:11:22:33"]}), seq) == []
    assert sids(LanDetector({}), seq) == []


def test_gateway_mac_change_learned_and_pinned() -> None:
    learned = LanDetector({"gateways": [GW]})
    assert sids(learned, [arp(1, GW, GW_MAC), arp(2, GW, GW_MAC), arp(3, GW, EVIL_MAC), arp(4, GW, EVIL_MAC)]) == [
        SID_GATEWAY_MAC
    ]
    pinned = LanDetector({"gateways": [f"{GW}={GW_MAC}"]})
    (a,) = pinned.observe(arp(1, GW, EVIL_MAC))
    assert a.sid == SID_GATEWAY_MAC and a.app["previous_mac"] == GW_MAC and a.src_mac == EVIL_MAC
    assert pinned.observe(arp(2, GW, GW_MAC)) == []


def test_arp_address_moves_and_realert_interval() -> None:
    det = LanDetector(LanConfig(realert_seconds=10))
    ip = "192.0.2.77"
    assert sids(det, [arp(1, ip, "02:00:00:00:00:01"), arp(2, ip, "02:00:00:00:00:02")]) == [SID_ARP_NEW_MAC]
    # flapping back and forth: one alert per (ip, mac) per interval
    assert sids(det, [arp(3, ip, "02:00:00:00:00:01"), arp(4, ip, "02:00:00:00:00:02")]) == [SID_ARP_NEW_MAC]
    assert sids(det, [arp(5, ip, "02:00:00:00:00:01")]) == []
    assert sids(det, [arp(20, ip, "02:00:00:00:00:02")]) == [SID_ARP_NEW_MAC]
    # probes from 0.0.0.0 (RFC 5227) bind nothing
    assert sids(det, [arp(21, "0.0.0.0", "02:00:00:00:00:03")]) == []


def test_ndp_advertisement_binding() -> None:
    det = LanDetector({"gateways": ["2001:db8::1"]})
    na = {"type": "ndp", "ts": 1, "ndp_type": "na", "target": "2001:db8::1", "lladdr": GW_MAC}
    assert sids(det, [na, {**na, "ts": 2, "lladdr": EVIL_MAC}]) == [SID_GATEWAY_MAC]


def test_closed_segment() -> None:
    det = LanDetector({"closed_segments": {"192.0.2.0/28": ["02:00:00:00:00:01"]}})
    ev = {"type": "dhcp", "ts": 1, "src": "192.0.2.5", "src_mac": "02:00:00:00:00:01"}
    assert sids(det, [ev]) == []
    intruder = {**ev, "src_mac": "02:00:00:00:00:66"}
    assert sids(det, [intruder, {**intruder, "ts": 2}]) == [SID_CLOSED_SEGMENT]
    assert sids(det, [{**intruder, "src": "192.0.2.100", "src_mac": "02:00:00:00:00:67"}]) == []  # other segment
    learning = LanDetector({"closed_segments": ["192.0.2.0/28"], "learn_seconds": 60})
    assert sids(learning, [ev, {**intruder, "ts": 30}]) == []
    assert sids(learning, [{**intruder, "ts": 90, "src_mac": "02:00:00:00:00:99"}]) == [SID_CLOSED_SEGMENT]


def test_horizontal_and_vertical_scans() -> None:
    cfg = {"scan_host_threshold": 10, "scan_port_threshold": 5, "scan_window": 60}
    det = LanDetector(cfg)
    horiz = [flow(1 + i * 0.1, "192.0.2.66", f"192.0.2.{100 + i}", 445) for i in range(12)]
    assert sids(det, horiz) == [SID_SCAN_HORIZONTAL]
    vert = [flow(10 + i * 0.1, "192.0.2.66", "192.0.2.10", 20 + i, "SAR", 1) for i in range(6)]
    assert sids(det, vert) == [SID_SCAN_VERTICAL]
    # slow scan: spread beyond the window, never enough at once
    slow = LanDetector(cfg)
    assert sids(slow, [flow(i * 30.0, "192.0.2.67", f"192.0.2.{i}", 22) for i in range(12)]) == []
    # a busy client with ordinary answered connections is not a scanner
    busy = LanDetector(cfg)
    ok = [flow(1 + i * 0.1, "192.0.2.68", f"198.51.100.{i}", 443, "SAFP", 8) for i in range(30)]
    assert sids(busy, ok) == []


def test_rogue_resolver() -> None:
    det = LanDetector({"resolvers": [GW]})
    q = {
        "type": "dns",
        "ts": 1,
        "proto_name": "dns",
        "response": False,
        "src": "192.0.2.106",
        "dst": "203.0.113.53",
        "dport": 53,
        "query": "www.example.com",
    }
    assert sids(det, [q, {**q, "ts": 2}]) == [SID_ROGUE_RESOLVER]
    assert sids(det, [{**q, "dst": GW}, {**q, "proto_name": "mdns", "dst": "224.0.0.251", "dport": 5353}]) == []
    assert sids(det, [{**q, "response": True, "src": "203.0.113.53", "dst": "192.0.2.106", "dport": 40000}]) == []


def test_tables_are_bounded() -> None:
    det = LanDetector({"max_tracked": 50})
    for i in range(500):
        det.observe(arp(i, f"198.51.100.{i % 250}", f"02:00:00:00:{i // 256:02x}:{i % 256:02x}"))
    assert len(det._bindings) <= 50 and len(det._alerted) <= 50


def test_lan_attacks_pcap_through_pipeline(repo: Path) -> None:
    from agent.pipeline import PipelineConfig, replay_events

    truth = json.loads((repo / "pcaps" / "truth.json").read_text())["captures"]["lan_attacks.pcap"]
    cfg = PipelineConfig(
        rule_files=[str(repo / "pcaps" / "lan_attacks.rules")],
        variables={"HOME_NET": "192.0.2.0/24"},
        ioc_files=[str(repo / "pcaps" / "lan_attacks.iocs.txt")],
        detections={
            "dhcp_servers": truth["allowed_dhcp_servers"],
            "gateways": [truth["gateway"]["ip"]],
            "resolvers": truth["site_resolvers"],
        },
        inventory=False,
    )
    alerts = [e for e in replay_events([str(repo / "pcaps" / "lan_attacks.pcap")], cfg) if e["type"] == "alert"]
    by_sid = Counter(a["sid"] for a in alerts)
    print(f"\nlan_attacks.pcap alerts by sid: {dict(sorted(by_sid.items()))}")
    first = {a["sid"]: a for a in reversed(alerts)}
    expected = {d["detection"]: d for d in truth["detections"]}
    assert by_sid[SID_ROGUE_DHCP] == 1 and first[SID_ROGUE_DHCP]["src"] == expected["rogue_dhcp"]["server"]
    assert by_sid[SID_GATEWAY_MAC] == 1 and first[SID_GATEWAY_MAC]["src_mac"] == expected["arp_spoof"]["spoofed_mac"]
    assert by_sid[SID_SCAN_HORIZONTAL] == 1 and first[SID_SCAN_HORIZONTAL]["app"]["port"] == 445
    assert by_sid[SID_SCAN_VERTICAL] == 1 and first[SID_SCAN_VERTICAL]["dst"] == expected["vertical_scan"]["dst"]
    assert (
        by_sid[SID_ROGUE_RESOLVER] == 1
        and first[SID_ROGUE_RESOLVER]["dst"] == expected["foreign_dns_resolver"]["resolver"]
    )
    # the project's rule file states its expected counts above each rule ("# expect N")
    rules_text = (repo / "pcaps" / "lan_attacks.rules").read_text().splitlines()
    for i, line in enumerate(rules_text):
        if line.startswith("# expect "):
            sid = int(rules_text[i + 1].split("sid:")[1].split(";")[0])
            assert by_sid[sid] == int(line.split()[2]), (sid, line)
    # IOC hits: the bad domain (query), the bad SNI (query and ClientHello), the bad IP
    assert by_sid[9200002] == 3 and by_sid[9200001] == 1
    assert SID_CLOSED_SEGMENT not in by_sid and SID_ARP_NEW_MAC not in by_sid


def test_randomised_mac_with_dhcp_lease_is_not_spoofing() -> None:
    det = LanDetector({"dhcp_servers": [GW]})
    ip, old, new = "192.0.2.116", "da:a1:19:5c:3e:01", "7e:04:d2:88:6b:f3"
    ack = {**dhcp(5, "ack", GW, GW_MAC), "yiaddr": ip, "client_mac": new}
    assert sids(det, [arp(1, ip, old), ack, arp(6, ip, new)]) == []
    # the same move without a lease is reported, and a rogue server's lease does not excuse it
    rogue_ack = {**dhcp(5, "ack", "192.0.2.250", "98:de:d0:11:22:33"), "yiaddr": ip, "client_mac": new}
    assert sids(LanDetector({"dhcp_servers": [GW]}), [arp(1, ip, old), rogue_ack, arp(6, ip, new)]) == [
        SID_ROGUE_DHCP,
        SID_ARP_NEW_MAC,
    ]


def test_no_alerts_on_ordinary_school_morning(repo: Path) -> None:
    from agent.pipeline import PipelineConfig, replay_events

    cfg = PipelineConfig(
        rule_files=[str(repo / "signatures" / "rules" / "data" / "sample.rules")],
        variables={"HOME_NET": "192.0.2.0/24"},
        detections={"dhcp_servers": [GW], "gateways": [GW], "resolvers": [GW]},
        inventory=False,
    )
    alerts = [e for e in replay_events([str(repo / "pcaps" / "school_morning.pcap")], cfg) if e["type"] == "alert"]
    print(f"\nschool_morning.pcap alerts with LAN detections on: {len(alerts)}")
    assert alerts == []
