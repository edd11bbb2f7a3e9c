"""Inventory and classifier on synthetic event sequences (documentation address ranges only)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.classify import ClassifierConfig, classify
from agent.inventory import Inventory, InventoryConfig
from signatures.evidence import Evidence, Suggests

IPHONE = "c4:61:8b:35:82:a9"  # Apple block
WIN = "00:13:72:c4:f1:e1"  # Dell block
CAM = "44:19:b6:00:00:01"  # Hikvision block
RAND1 = "da:a1:19:00:00:01"
RAND2 = "6e:a1:19:00:00:02"
ROUTER = "00:00:0c:07:ac:01"

WIN10_PARAMS = [1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119, 121, 249, 252]
IOS_PARAMS = [1, 121, 3, 6, 15, 119, 252]


def vendors(mac: str) -> str | None:
    return {
        IPHONE: "Apple, Inc.",
        WIN: "Dell Inc.",
        CAM: "Hangzhou Hikvision Digital Technology Co.,Ltd.",
        ROUTER: "Cisco Systems, Inc",
    }.get(mac)


def inv(**kw: Any) -> Inventory:
    kw.setdefault("local_networks", ("192.0.2.0/24", "2001:db8::/32"))  # the synthetic site's LAN
    return Inventory(InventoryConfig(**kw), vendor_lookup=vendors)


def base(kind: str, ts: float, mac: str, src: str, **fields: Any) -> dict[str, Any]:
    ev = {
        "type": kind, "ts": ts, "src_mac": mac, "dst_mac": "ff:ff:ff:ff:ff:ff", "src": src, "dst": "192.0.2.1",
        "sport": 0, "dport": 0, "proto": "udp", "community_id": None, "pkt": 1,
    }  # fmt: skip
    ev.update(fields)
    return ev


def dhcp(ts: float, mac: str, msg: int = 3, **fields: Any) -> dict[str, Any]:
    f = {"msg_type": msg, "client_mac": mac, "hostname": None, "params": [], "vendor_class": None,
         "client_id": "01" + mac.replace(":", ""), "requested_ip": None, "yiaddr": None, "ciaddr": None}  # fmt: skip
    f.update(fields)
    if msg in (2, 5, 6):  # offer, ack, nak come from the server
        return base("dhcp", ts, ROUTER, "192.0.2.1", server_id="192.0.2.1", **f)
    return base("dhcp", ts, mac, "0.0.0.0", **f)


def syn(ts: float, mac: str, src: str, label: str | None, ttl: int = 128, synack: bool = False) -> dict[str, Any]:
    return base("tcp_syn", ts, mac, src, proto="tcp", ttl=ttl, window=64240, mss=1460, wscale=8,
                options="mss,nop,ws,nop,nop,sok", synack=synack, p0f=label)  # fmt: skip


def ua(ts: float, mac: str, src: str, agent: str) -> dict[str, Any]:
    return base("http", ts, mac, src, proto="tcp", method="GET", host="example.com", uri="/", user_agent=agent,
                version="1.1")  # fmt: skip


IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Mobile/15E148 Safari/604.1"
)
LINUX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"


def test_one_dhcp_packet_is_not_certain() -> None:
    i = inv()
    i.observe(dhcp(1.0, WIN, hostname="DESKTOP-AB12CD3", params=WIN10_PARAMS, vendor_class="MSFT 5.0"), 1.0)
    (d,) = i.devices()
    assert d["os"]["family"] == "Windows"
    assert 0 < d["os"]["confidence"] < 0.7
    assert d["fingerprints"]["dhcp"] == ["1,3,6,15,31,33,43,44,46,47,119,121,249,252;MSFT 5.0"]
    assert {e["source"] for e in d["evidence"]} == {"oui", "dhcp", "dhcp_vendor_class", "dhcp_hostname"}


def test_independent_protocols_build_confidence_and_device_type() -> None:
    i = inv()
    i.observe(dhcp(1.0, IPHONE, hostname="Lucas-iPhone", params=IOS_PARAMS, requested_ip="192.0.2.20"), 1.0)
    i.observe(dhcp(1.1, IPHONE, msg=5, yiaddr="192.0.2.20"), 1.1)
    first = i.device(IPHONE)
    assert first is not None
    i.observe(ua(5.0, IPHONE, "192.0.2.20", IPHONE_UA), 5.0)
    i.observe(base("dns", 6.0, IPHONE, "192.0.2.20", proto_name="dns", response=False,
                   query="captive.apple.com", qtype=1, queries=["captive.apple.com"], answers=[]), 6.0)  # fmt: skip
    d = i.device(IPHONE)
    assert d is not None
    assert (d["os"]["family"], d["os"]["version"], d["device_type"]) == ("iOS", "17.2", "phone")
    assert d["os"]["confidence"] > first["os"]["confidence"]
    assert d["os"]["confidence"] >= 0.7
    assert d["ips"] == ["192.0.2.20"]
    assert d["names"][0]["name"] == "Lucas-iPhone" and d["names"][0]["source"] == "dhcp"
    assert d["vendor"] == "Apple, Inc." and d["randomized_mac"] is False


def test_hysteresis_one_contradicting_packet_does_not_flip() -> None:
    i = inv()
    i.observe(dhcp(1.0, WIN, hostname="DESKTOP-AB12CD3", params=WIN10_PARAMS, vendor_class="MSFT 5.0"), 1.0)
    i.observe(syn(2.0, WIN, "192.0.2.30", "Windows NT kernel"), 2.0)
    before = i.device(WIN)
    assert before is not None and before["os"]["family"] == "Windows"
    # one Linux User-Agent (a VM, a spoofed browser) arrives
    i.observe(ua(3.0, WIN, "192.0.2.30", LINUX_UA), 3.0)
    after = i.device(WIN)
    assert after is not None and after["os"]["family"] == "Windows"
    assert after["os"]["confidence"] < before["os"]["confidence"]
    # sustained Linux evidence from three protocols roughly equals the Windows evidence: the incumbent
    # holds (a challenger must clearly win) and the disagreement is shown, not averaged away
    for n in range(4):
        i.observe(ua(4.0 + n, WIN, "192.0.2.30", LINUX_UA.replace("121.0", f"12{n}.0")), 4.0 + n)
        i.observe(base("ssh", 4.5 + n, WIN, "192.0.2.30", proto="tcp", banner=f"SSH-2.0-OpenSSH_9.{n} Debian-2",
                       role="client"), 4.5 + n)  # fmt: skip
        i.observe(base("dns", 4.6 + n, WIN, "192.0.2.30", proto_name="dns", response=False,
                       query="nmcheck.gnome.org", qtype=1, queries=[], answers=[]), 4.6 + n)  # fmt: skip
    final = i.device(WIN)
    assert final is not None and final["os"]["family"] == "Windows"
    assert final["contradictions"][0]["between"] == ["os_family=Windows", "os_family=Linux"]
    assert final["contradictions"][0]["sources"][1] == ["dns_query", "http_user_agent", "ssh_banner"]


def test_classifier_hysteresis_margin_directly() -> None:
    cfg = ClassifierConfig()

    def ev(src: str, fam: str, w: float) -> tuple[Evidence, int]:
        return Evidence(src, fam + src, Suggests(os_family=fam), w, 0.0, 0.0), 1

    first = classify([ev("dhcp", "Windows", 0.6)], None, cfg)
    assert first.os_family.value == "Windows"
    # a challenger slightly stronger than the incumbent does not flip it...
    held = classify([ev("dhcp", "Windows", 0.6), ev("http", "Linux", 0.7)], first, cfg)
    assert held.os_family.value == "Windows" and held.os_family.runner_up == "Linux"
    # ...but from scratch it would win
    assert classify([ev("dhcp", "Windows", 0.6), ev("http", "Linux", 0.7)], None, cfg).os_family.value == "Linux"
    # a clear winner does flip it
    flipped = classify([ev("dhcp", "Windows", 0.6), ev("http", "Linux", 0.7), ev("ssh", "Linux", 0.5)], first, cfg)
    assert flipped.os_family.value == "Linux"
    # a generic family supports the specific one instead of opposing it
    both = classify([ev("tcp", "Linux", 0.25), ev("dhcp", "Android", 0.6)], None, cfg)
    assert both.os_family.value == "Android" and both.os_family.runner_up is None


def test_strong_contradiction_is_kept_visible() -> None:
    i = inv()
    i.observe(dhcp(1.0, CAM, params=WIN10_PARAMS, vendor_class="MSFT 5.0", requested_ip="192.0.2.40"), 1.0)
    i.observe(syn(2.0, CAM, "192.0.2.40", "Windows 7 or 8"), 2.0)
    d = i.device(CAM)
    assert d is not None
    assert d["os"]["family"] == "Windows" and d["device_type"] == "camera"
    assert d["contradictions"], d
    c = d["contradictions"][0]
    assert c["between"] == ["device_type=camera", "os_family=Windows"]
    assert c["sources"][0] == ["oui"] and "dhcp" in c["sources"][1] and "tcp_syn" in c["sources"][1]


def test_randomised_mac_linked_by_client_id_and_hostname_fingerprint() -> None:
    i = inv()
    i.observe(dhcp(1.0, RAND1, hostname="Emma-iPad", params=IOS_PARAMS, client_id="ff00112233"), 1.0)
    i.observe(dhcp(500.0, RAND2, hostname="Emma-iPad", params=IOS_PARAMS, client_id="ff00112233"), 500.0)
    d = i.device(RAND2)
    assert d is not None and d["randomized_mac"] is True
    assert d["vendor"] == "Apple"  # no registry owner for a local MAC: the maker the evidence names
    assert d["linked"]["mac"] == RAND1 and d["linked"]["basis"] == "dhcp_client_id"
    # hostname + fingerprint, when the client id is just the MAC
    j = inv()
    j.observe(dhcp(1.0, RAND1, hostname="Emma-iPad", params=IOS_PARAMS), 1.0)
    j.observe(dhcp(900.0, RAND2, hostname="Emma-iPad", params=IOS_PARAMS), 900.0)
    d2 = j.device(RAND2)
    assert d2 is not None and d2["linked"]["basis"] == "hostname+dhcp_fingerprint"
    assert d2["linked"]["value"] == "emma-ipad|" + ",".join(map(str, IOS_PARAMS))


def test_no_link_for_generic_names_or_overlapping_devices() -> None:
    i = inv()
    i.observe(dhcp(1.0, RAND1, hostname="iPhone", params=IOS_PARAMS), 1.0)
    i.observe(dhcp(2.0, RAND2, hostname="iPhone", params=IOS_PARAMS), 2.0)
    assert i.device(RAND2)["linked"] is None  # type: ignore[index]
    j = inv()
    j.observe(dhcp(1.0, RAND1, hostname="Emma-iPad", params=IOS_PARAMS), 1.0)
    j.observe(dhcp(2.0, RAND2, hostname="Emma-iPad", params=IOS_PARAMS), 2.0)
    j.observe(dhcp(3.0, RAND1, hostname="Emma-iPad", params=IOS_PARAMS), 3.0)
    j.observe(dhcp(4.0, RAND2, hostname="Emma-iPad", params=IOS_PARAMS), 4.0)
    assert j.device(RAND2)["linked"] is None  # type: ignore[index]


def test_duid_links_dhcpv6() -> None:
    i = inv()
    for ts, mac in ((1.0, RAND1), (50.0, RAND2)):
        i.observe(base("dhcp6", ts, mac, "fe80::1", msg_type=1, msg_type_name="solicit",
                       duid="000100012a2b3c4d001372c4f1e1", duid_type=1, duid_mac="00:13:72:c4:f1:e1",
                       oro=[23, 24], vendor_class=None, enterprise=None, fqdn=None, options=[1, 6]), ts)  # fmt: skip
    d = i.device(RAND2)
    assert d is not None and d["linked"] == {"mac": RAND1, "basis": "dhcp6_duid",
                                             "value": "000100012a2b3c4d001372c4f1e1", "ts": 50.0}  # fmt: skip


def test_bindings_over_time_from_dhcp_arp_ndp() -> None:
    i = inv()
    i.observe(dhcp(10.0, IPHONE, msg=5, yiaddr="192.0.2.50"), 10.0)
    assert i.mac_for("192.0.2.50", 11.0) == IPHONE
    assert i.mac_for("192.0.2.50", 9.0) is None  # before the lease
    router = i.device(ROUTER)  # the sender of the ACK serves DHCP
    assert router is not None and router["device_type"] == "network equipment"
    assert router["ips"] == ["192.0.2.1"] and {e["source"] for e in router["evidence"]} == {"oui", "dhcp_server"}
    i.observe(base("arp", 100.0, WIN, "192.0.2.50", proto="arp", op=2, sender_mac=WIN, sender_ip="192.0.2.50",
                   target_mac=ROUTER, target_ip="192.0.2.1"), 100.0)  # fmt: skip
    assert i.mac_for("192.0.2.50", 50.0) == IPHONE  # history kept
    assert i.mac_for("192.0.2.50", 101.0) == WIN
    assert i.mac_for("192.0.2.50", 100.0 + 2 * 86_400) is None  # stale
    i.observe(base("arp", 5.0, RAND1, "0.0.0.0", proto="arp", op=1, sender_mac=RAND1, sender_ip="0.0.0.0",
                   target_mac="00:00:00:00:00:00", target_ip="192.0.2.60"), 5.0)  # fmt: skip
    assert i.mac_for("192.0.2.60", 6.0) is None  # an ARP probe claims nothing
    i.observe(base("ndp", 7.0, WIN, "fe80::213:72ff:fec4:f1e1", proto="icmp6", ndp_type="na",
                   target="2001:db8::50", lladdr=WIN), 7.0)  # fmt: skip
    assert i.mac_for("2001:db8::50", 8.0) == WIN
    d = i.device(WIN)
    assert d is not None and d["ips"] == ["192.0.2.50", "2001:db8::50"]


def test_remote_servers_behind_the_router_are_not_the_router() -> None:
    i = inv()
    i.observe(syn(0.5, ROUTER, "198.51.100.7", "Linux 3.11 and newer", ttl=50, synack=True), 0.5)
    i.observe(syn(1.0, ROUTER, "8.8.8.8", "Linux 3.11 and newer", ttl=50, synack=True), 1.0)
    i.observe(base("tls_server", 1.1, ROUTER, "8.8.8.8", proto="tcp", ja3s="abc"), 1.1)
    assert i.devices() == []
    i.observe(base("arp", 2.0, ROUTER, "198.51.100.7", proto="arp", op=2, sender_mac=ROUTER,
                   sender_ip="198.51.100.7", target_mac=WIN, target_ip="192.0.2.30"), 2.0)  # fmt: skip
    i.observe(syn(3.0, ROUTER, "198.51.100.7", "Linux 3.11 and newer", ttl=64, synack=True), 3.0)
    (r,) = i.devices()  # once ARP shows the address on the link, its SYN+ACK is the router's own
    assert r["fingerprints"] == {} and r["os"]["family"] == "Linux"
    i2 = inv(local_networks=("8.8.8.0/24",))
    i2.observe(syn(1.0, ROUTER, "8.8.8.8", "Linux 3.11 and newer", ttl=50, synack=True), 1.0)
    assert len(i2) == 1


def test_mdns_ssdp_nbns_evidence_and_names() -> None:
    i = inv()
    tv = "00:00:0c:00:00:99"
    i.observe(base("dns", 1.0, tv, "192.0.2.70", proto_name="mdns", response=True, query=None, qtype=None,
                   queries=[], rcode=0, answers=[
                       {"name": "_googlecast._tcp.local", "type": 12, "ttl": 120,
                        "data": "Living-Room-TV-abc._googlecast._tcp.local"},
                       {"name": "Living-Room-TV-abc._googlecast._tcp.local", "type": 16, "ttl": 120,
                        "data": '"id=abc" "md=Chromecast" "fn=Living Room TV"'},
                       {"name": "Living-Room-TV.local", "type": 1, "ttl": 120, "data": "192.0.2.70"},
                   ]), 1.0)  # fmt: skip
    i.observe(base("ssdp", 2.0, tv, "192.0.2.70", method="NOTIFY", st=None,
                   nt="urn:dial-multiscreen-org:service:dial:1", nts="ssdp:alive", usn="uuid:x",
                   server="Linux/4.9 UPnP/1.0 CrKey/1.56", user_agent=None, location=None), 2.0)  # fmt: skip
    d = i.device(tv)
    assert d is not None and d["device_type"] == "tv/streamer"
    srcs = {(e["source"], e["value"]) for e in d["evidence"]}
    assert ("mdns_service", "_googlecast._tcp") in srcs and ("mdns_txt", "md=Chromecast") in srcs
    assert ("ssdp_type", "urn:dial-multiscreen-org:service:dial:1") in srcs
    assert d["names"] == [{"name": "Living-Room-TV.local", "source": "mdns", "first_seen": 1.0, "last_seen": 1.0}]
    pc = "00:13:72:00:00:07"
    i.observe(base("nbns", 3.0, pc, "192.0.2.71", name="LAPTOP-7K2M9QXZ", suffix=0, response=False,
                   opcode=5), 3.0)  # fmt: skip
    i.observe(base("nbns", 3.5, pc, "192.0.2.71", name="PRINTER-OFFICE", suffix=0, response=False,
                   opcode=0), 3.5)  # fmt: skip
    p = i.device(pc)
    assert p is not None and p["device_type"] == "laptop" and p["os"]["family"] == "Windows"
    assert [n["name"] for n in p["names"]] == ["LAPTOP-7K2M9QXZ"]  # the query names someone else


def test_evidence_dedup_counts_and_bounds() -> None:
    i = inv(max_devices=3, max_evidence=4, max_ips=2)
    for n in range(10):
        i.observe(ua(float(n), WIN, "192.0.2.30", LINUX_UA), float(n))
    (d,) = i.devices()
    (ev,) = [e for e in d["evidence"] if e["source"] == "http_user_agent"]
    assert (ev["count"], ev["first_seen"], ev["last_seen"]) == (10, 0.0, 9.0)
    for n in range(6):
        i.observe(ua(20.0 + n, WIN, f"192.0.2.{100 + n}", LINUX_UA.replace("121.0", f"9{n}.0")), 20.0 + n)
    d = i.device(WIN)
    assert d is not None and len(d["evidence"]) == 4 and len(d["ips"]) == 2
    assert d["ips"] == ["192.0.2.104", "192.0.2.105"]
    for n in range(5):
        i.observe(ua(40.0 + n, f"00:13:72:00:01:0{n}", "192.0.2.9", LINUX_UA), 40.0 + n)
    assert len(i) == 3 and i.evicted == 3
    assert i.device(WIN) is None  # least recently seen went first


def test_changed_since_reports_material_changes_only() -> None:
    i = inv()
    i.observe(dhcp(1.0, WIN, hostname="DESKTOP-AB12CD3", params=WIN10_PARAMS), 1.0)
    out, cur = i.changed_since(0)
    assert [d["mac"] for d in out] == [WIN]
    i.observe(dhcp(2.0, WIN, hostname="DESKTOP-AB12CD3", params=WIN10_PARAMS), 2.0)
    for n in range(10):
        i.observe(dhcp(3.0 + n, WIN, hostname="DESKTOP-AB12CD3", params=WIN10_PARAMS), 3.0 + n)
    out2, cur2 = i.changed_since(cur)
    assert out2 == [] or all(d["mac"] == WIN for d in out2)
    _, cur3 = i.changed_since(cur2)
    i.observe(dhcp(30.0, WIN, hostname="DESKTOP-AB12CD3", params=WIN10_PARAMS), 30.0)
    assert i.changed_since(cur3)[0] == []  # only last_seen moved
    i.observe(syn(31.0, WIN, "192.0.2.30", "Windows NT kernel"), 31.0)
    out4, _ = i.changed_since(cur3)
    assert [d["mac"] for d in out4] == [WIN] and "p0f" in out4[0]["fingerprints"]


@pytest.mark.parametrize("kind", ["dhcp", "dns", "nbns", "ssdp", "http", "tls_client", "ssh", "tcp_syn", "arp"])
def test_events_with_missing_fields_do_not_raise(kind: str) -> None:
    i = inv()
    i.observe({"type": kind, "ts": 1.0, "src_mac": WIN, "src": "192.0.2.3"}, 1.0)
    i.observe({"type": kind}, 1.0)
    assert len(i) <= 1


_macs = st.sampled_from([IPHONE, WIN, CAM, RAND1, RAND2, ROUTER, "01:00:5e:00:00:fb", ""])
_ips = st.sampled_from(["192.0.2.5", "192.0.2.6", "198.51.100.9", "2001:db8::5", "fe80::1", "0.0.0.0", "", "bad"])


@st.composite
def _events(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["dhcp", "dhcp6", "dns", "nbns", "ssdp", "http", "tls_client", "ssh", "tcp_syn",
                                 "arp", "ndp"]))  # fmt: skip
    mac, ip, ts = draw(_macs), draw(_ips), draw(st.floats(0, 1e6))
    fields: dict[str, Any] = {}
    if kind == "dhcp":
        fields = {"msg_type": draw(st.integers(1, 8)), "client_mac": draw(_macs), "hostname": draw(st.sampled_from(
            [None, "Emma-iPad", "iPhone", "DESKTOP-AB12CD3"])), "params": draw(st.sampled_from([[], IOS_PARAMS,
            WIN10_PARAMS])), "client_id": draw(st.sampled_from([None, "ff01", "01" + WIN.replace(":", "")])),
            "yiaddr": draw(_ips), "requested_ip": draw(_ips)}  # fmt: skip
    elif kind == "dhcp6":
        fields = {"duid": draw(st.sampled_from([None, "0001", "0003"])), "oro": [23, 24]}
    elif kind == "arp":
        fields = {"op": draw(st.integers(0, 3)), "sender_mac": draw(_macs), "sender_ip": draw(_ips)}
    elif kind == "ndp":
        fields = {"ndp_type": draw(st.sampled_from(["ns", "na", "ra", "rs"])), "target": draw(_ips),
                  "lladdr": draw(st.one_of(st.none(), _macs))}  # fmt: skip
    elif kind == "tcp_syn":
        fields = {"p0f": draw(st.sampled_from([None, "Windows NT kernel", "Linux 3.11 and newer"])),
                  "ttl": draw(st.integers(1, 255)), "synack": draw(st.booleans())}  # fmt: skip
    elif kind == "http":
        fields = {"user_agent": draw(st.sampled_from([None, IPHONE_UA, LINUX_UA])), "host": "captive.apple.com"}
    return base(kind, ts, mac, ip, **fields)


@settings(max_examples=200, deadline=None)
@given(st.lists(_events(), max_size=40))
def test_any_event_sequence_keeps_invariants(events: list[dict[str, Any]]) -> None:
    i = inv(max_devices=4, max_evidence=5, max_ips=3, max_names=2)
    cursor = 0
    for e in events:
        i.observe(e, e["ts"])
        out, cursor = i.changed_since(cursor)
        assert all(d["mac"] for d in out)
    assert len(i) <= 4
    for d in i.devices():
        assert len(d["evidence"]) <= 5 and len(d["ips"]) <= 3 and len(d["names"]) <= 2
        assert 0.0 <= d["confidence"] <= 1.0
        assert not d["mac"].startswith("01:")  # group addresses are never devices
        assert d["linked"] is None or d["linked"]["mac"] != d["mac"]
