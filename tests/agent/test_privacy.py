"""Privacy profiles and pseudonyms (agent/privacy.py) on hand-made events: each rule of docs/privacy.md."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.privacy import (
    SPECS,
    PrivacyConfig,
    PrivacyError,
    PrivacyFilter,
    field_table,
    is_pseudonym,
    parse_privacy,
    pseudonym,
)
from agent.wire import to_wire

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
TS = 1788766200.5  # the fixtures' school morning
DAY = 86400.0


def filt(profile: str = "pseudonymised", key: bytes = KEY, **switches: Any) -> PrivacyFilter:
    return PrivacyFilter(PrivacyConfig(profile=profile, key_file="k", **switches), key)  # type: ignore[arg-type]


def dhcp(ts: float = TS, mac: str = "d8:9e:f3:4a:21:07", host: str = "STAFF-LT-042") -> dict[str, Any]:
    return {
        "type": "dhcp", "ts": ts, "src_mac": mac, "dst_mac": "ff:ff:ff:ff:ff:ff", "src": "0.0.0.0",
        "dst": "255.255.255.255", "sport": 68, "dport": 67, "proto": "udp", "community_id": "1:abc=", "pkt": 1,
        "msg_type": 3, "msg_type_name": "request", "client_mac": mac, "hostname": host,
        "params": [1, 3, 6, 15], "vendor_class": "MSFT 5.0", "client_id": "01" + mac.replace(":", ""),
        "requested_ip": "192.0.2.101", "server_id": "192.0.2.1", "max_msg_size": None, "options": [53, 61, 50],
        "yiaddr": "0.0.0.0", "ciaddr": "0.0.0.0",
    }  # fmt: skip


def flow(src: str = "192.0.2.101", dst: str = "198.51.100.10", ts: float = TS) -> dict[str, Any]:
    return {
        "type": "flow", "ts_start": ts, "ts_end": ts + 1, "proto": "tcp", "src": src, "sport": 50000,
        "dst": dst, "dport": 443, "src_mac": "d8:9e:f3:4a:21:07", "dst_mac": "00:1b:54:0a:00:01",
        "pkts_fwd": 3, "pkts_rev": 2, "bytes_fwd": 300, "bytes_rev": 200, "tcp_flags": "SAF",
        "end_reason": "fin", "community_id": "1:wwCCJdshCOG8h3DN8DdWjXIVVB4=", "app": "tls", "vlan": None,
    }  # fmt: skip


def device() -> dict[str, Any]:
    return {
        "type": "device", "ts": TS, "mac": "7e:04:d2:88:6b:f3", "vendor": "Google", "randomized_mac": True,
        "ips": ["192.0.2.116", "2001:db8:1::116"],
        "names": [{"name": "Pixel-8", "source": "dhcp", "first_seen": TS, "last_seen": TS}],
        "os": {"family": "Android", "version": "14", "confidence": 0.8}, "device_type": "phone", "confidence": 0.7,
        "evidence": [
            {"source": "dhcp_hostname", "value": "Pixel-8", "suggests": {"vendor": "Google"}, "weight": 0.5,
             "first_seen": TS, "last_seen": TS, "note": "Google Pixel default device name", "count": 2},
            {"source": "http_user_agent", "value": "Mozilla/5.0 (Linux; Android 14; Pixel 8)",
             "suggests": {"os_family": "Android"}, "weight": 0.45, "first_seen": TS, "last_seen": TS},
            {"source": "dns_query", "value": "connectivitycheck.gstatic.com", "suggests": {"os_family": "Android"},
             "weight": 0.35, "first_seen": TS, "last_seen": TS},
            {"source": "oui", "value": "Google", "suggests": {"vendor": "Google"}, "weight": 0.3,
             "first_seen": TS, "last_seen": TS},
            {"source": "some_future_source", "value": "secret", "suggests": {}, "weight": 0.1,
             "first_seen": TS, "last_seen": TS},
        ],
        "fingerprints": {"ja4": ["t13d1516h2_8daaf6152771_d8a2da3f94cd"], "dhcp": ["1,3,6;android-dhcp-14"]},
        "first_seen": TS, "last_seen": TS, "contradictions": [],
        "linked": {"mac": "da:a1:19:5c:3e:01", "basis": "dhcp_client_id", "value": "ff9a3c0e71", "ts": TS},
    }  # fmt: skip


def alert() -> dict[str, Any]:
    return {
        "type": "alert", "ts": TS, "sid": 9100001, "gid": 1, "rev": 1, "msg": "New device 2c:f0:5d:6e:7f:80 "
        "(192.0.2.66) in closed segment 192.0.2.0/24", "classtype": "unknown-device", "severity": 2,
        "src": "192.0.2.66", "sport": 63032, "dst": "192.0.2.10", "dport": 80, "proto": "tcp",
        "community_id": "1:wwCCJdshCOG8h3DN8DdWjXIVVB4=",
        "app": {"method": "GET", "host": "192.0.2.10:8080", "uri": "/index.php?id=1", "user_agent": "sqlmap/1.7",
                "mac": "2c:f0:5d:6e:7f:80", "hosts": 60},
        "rule_file": "lan_attacks.rules", "src_mac": "2c:f0:5d:6e:7f:80", "action": "alert",
    }  # fmt: skip


# ---- pseudonyms ---------------------------------------------------------------------------------------
def test_pseudonyms_are_prefixed_keyed_and_stable_within_a_period() -> None:
    f = filt()
    a, b = f.apply(dhcp()), f.apply(dhcp(ts=TS + 3 * DAY))
    assert a is not None and b is not None
    assert re.fullmatch(r"pm:[0-9a-f]{16}", a["src_mac"]) and a["client_mac"] == a["src_mac"]
    assert re.fullmatch(r"pn:[0-9a-f]{16}", a["hostname"])
    assert re.fullmatch(r"p4:[0-9a-f]{16}", a["requested_ip"])
    assert re.fullmatch(r"pi:[0-9a-f]{16}", a["client_id"])
    assert re.fullmatch(r"pc:[0-9a-f]{16}", a["community_id"])
    assert a["src_mac"] == b["src_mac"] and a["hostname"] == b["hostname"]  # same 30-day period
    c = f.apply(dhcp(ts=TS + 31 * DAY))
    assert c is not None and c["src_mac"] != a["src_mac"]  # next period, new key
    d = filt(key=OTHER_KEY).apply(dhcp())
    assert d is not None and d["src_mac"] != a["src_mac"]  # another site's key
    # The same MAC written differently, and a hostname in another case, give the same pseudonym.
    e = f.apply(dhcp(mac="D8:9E:F3:4A:21:07", host="staff-lt-042"))
    assert e is not None and e["src_mac"] == a["src_mac"] and e["hostname"] == a["hostname"]
    period = int(TS // (30 * DAY))
    assert a["src_mac"] == pseudonym(KEY, period, "mac", "d8:9e:f3:4a:21:07")


def test_special_addresses_stay_and_classification_survives() -> None:
    out = filt().apply(dhcp())
    assert out is not None
    assert (out["dst_mac"], out["src"], out["dst"], out["yiaddr"]) == (
        "ff:ff:ff:ff:ff:ff", "0.0.0.0", "255.255.255.255", "0.0.0.0",
    )  # fmt: skip
    assert out["params"] == [1, 3, 6, 15] and out["vendor_class"] == "MSFT 5.0"
    dev = filt().apply(device())
    assert dev is not None
    for key in ("vendor", "randomized_mac", "device_type", "os", "confidence", "fingerprints"):
        assert dev[key] == device()[key], key
    assert dev["pseudonymised"] is True
    assert is_pseudonym(dev["mac"]) and is_pseudonym(dev["linked"]["mac"]) and is_pseudonym(dev["linked"]["value"])
    assert [n["name"][:3] for n in dev["names"]] == ["pn:"]
    sources = [e["source"] for e in dev["evidence"]]
    assert "some_future_source" not in sources  # fail closed
    ev = {e["source"]: e["value"] for e in dev["evidence"]}
    assert ev["dhcp_hostname"] == dev["names"][0]["name"]  # one name, one pseudonym
    assert ev["oui"] == "Google" and ev["dns_query"] == "connectivitycheck.gstatic.com"


def test_minimal_truncates_addresses_and_drops_names_and_dns() -> None:
    f = filt("minimal")
    dev = f.apply(device())
    assert dev is not None
    assert dev["ips"] == ["192.0.2.0/24", "2001:db8:1::/48"]
    assert dev["names"] == []
    assert {e["source"] for e in dev["evidence"]} == {"http_user_agent", "oui"}
    assert dev["linked"]["value"].startswith("pi:") and is_pseudonym(dev["linked"]["mac"])  # ids stay linkable
    by_name = f.apply(device() | {"linked": {"mac": "da:a1:19:5c:3e:01", "basis": "hostname+dhcp_fingerprint",
                                              "value": "pixel-8|1,3,6", "ts": TS}})  # fmt: skip
    assert by_name is not None and by_name["linked"]["value"] is None
    d = f.apply(dhcp())
    assert d is not None and d["hostname"] is None and d["requested_ip"] == "192.0.2.0/24"
    dns = {**dhcp(), "type": "dns", "proto_name": "dns", "query": "ent.ecole.example", "queries": ["ent.ecole.example"],
           "answers": [{"name": "ent.ecole.example", "type": 1, "ttl": 60, "data": "198.51.100.20"}]}  # fmt: skip
    out = f.apply(dns)
    assert out is not None and out["query"] is None and out["queries"] == [] and out["answers"] == []
    fl = f.apply(flow())
    assert fl is not None and (fl["src"], fl["dst"]) == ("192.0.2.0/24", "198.51.100.0/24")


def test_community_id_is_one_pseudonym_for_flow_and_alert() -> None:
    f = filt()
    fl, al = f.apply(flow()), f.apply(alert())
    assert fl is not None and al is not None
    assert fl["community_id"] == al["community_id"] and is_pseudonym(fl["community_id"])
    assert filt("full").apply(flow()) == flow()


def test_addresses_inside_text_are_replaced() -> None:
    al = filt().apply(alert())
    assert al is not None
    assert "2c:f0:5d:6e:7f:80" not in al["msg"] and "192.0.2.66" not in al["msg"]
    shape = r"New device pm:[0-9a-f]{16} \(p4:[0-9a-f]{16}\) in closed segment p4:[0-9a-f]{16}/24"
    assert re.fullmatch(shape, al["msg"])
    assert is_pseudonym(al["app"]["host"])  # a Host header that is an address
    assert al["app"]["uri"] is None  # request targets are payload: full profile only
    assert al["app"]["user_agent"] == "sqlmap/1.7" and al["app"]["hosts"] == 60
    ua = {**dhcp(), "type": "http", "method": "GET", "host": "rps.yealink.com", "uri": "/x",
          "user_agent": "Yealink SIP-T46U 108.86.0.90 80:5E:C0:27:B4:61", "version": "HTTP/1.1"}  # fmt: skip
    out = filt().apply(ua)
    assert out is not None and "80:5e:c0:27:b4:61" not in out["user_agent"].lower()
    assert out["user_agent"].startswith("Yealink SIP-T46U p4:") and out["host"] == "rps.yealink.com"
    rev = {**dhcp(), "type": "dns", "proto_name": "dns", "query": "101.2.0.192.in-addr.arpa", "queries": [],
           "answers": []}  # fmt: skip
    out = filt().apply(rev)
    assert out is not None and is_pseudonym(out["query"])


def test_local_names_keep_their_service_type() -> None:
    mdns = {**dhcp(), "type": "dns", "proto_name": "mdns", "response": True, "query": None, "queries": [],
            "answers": [
                {"name": "_ipp._tcp.local", "type": 12, "ttl": 120, "data": "Salle 12 Printer._ipp._tcp.local"},
                {"name": "NPI3A7F2C.local", "type": 1, "ttl": 120, "data": "192.0.2.109"},
                {"name": "Salle 12 Printer._ipp._tcp.local", "type": 16, "ttl": 120, "data": '"note=Salle 12"'},
            ]}  # fmt: skip
    out = filt().apply(mdns)
    assert out is not None
    a0, a1, a2 = out["answers"]
    assert a0["name"] == "_ipp._tcp.local" and re.fullmatch(r"pn:[0-9a-f]{16}\._ipp\._tcp\.local", a0["data"])
    assert re.fullmatch(r"pn:[0-9a-f]{16}\.local", a1["name"]) and is_pseudonym(a1["data"])
    assert a2["name"] == a0["data"] and is_pseudonym(a2["data"])


def test_switches_turn_each_kind_of_text_off() -> None:
    http = {**dhcp(), "type": "http", "method": "GET", "host": "ent.ecole.example", "uri": "/login",
            "user_agent": "Mozilla/5.0", "version": "HTTP/1.1"}  # fmt: skip
    tls = {**dhcp(), "type": "tls_client", "sni": "ent.ecole.example", "ja4": "t13d1516h2_x_y"}
    full = filt("full")
    assert full.apply(http) == http and full.active is False
    no_ua = filt("full", user_agents=False)
    assert no_ua.active is True
    out = no_ua.apply(http)
    assert out is not None and out["user_agent"] is None and out["host"] == "ent.ecole.example"
    assert out["src_mac"] == http["src_mac"] and out["uri"] == "/login"  # full keeps the rest in clear
    no_sni = filt(sni=False)
    t, h = no_sni.apply(tls), no_sni.apply(http)
    assert t is not None and h is not None and t["sni"] is None and h["host"] is None and t["ja4"] == tls["ja4"]
    no_names = filt(names=False)
    d = no_names.apply(device())
    assert d is not None and d["names"] == [] and "dhcp_hostname" not in {e["source"] for e in d["evidence"]}


def test_unknown_fields_and_event_types_fail_closed() -> None:
    extra = {**flow(), "payload_head": "GET /secret HTTP/1.1"}
    out = filt().apply(extra)
    assert out is not None and "payload_head" not in out
    full = filt("full", dns_queries=False).apply(extra)
    assert full is not None and full["payload_head"] == "GET /secret HTTP/1.1"
    f = filt()
    assert f.apply({"type": "smb", "ts": TS, "share": "\\\\srv\\eleves"}) is None and f.dropped_events == 1
    stats = {"type": "stats", "packets": 3}
    assert f.apply(stats) == stats


def test_filtered_events_still_fit_the_wire_schema() -> None:
    for profile in ("pseudonymised", "minimal"):
        f = filt(profile)
        for ev in (dhcp(), flow(), device(), alert()):
            out = f.apply(ev)
            assert out is not None
            assert to_wire(out) is not None, (profile, ev["type"])


def test_config_errors_name_the_key() -> None:
    assert parse_privacy({"profile": "minimal", "key_file": "/k", "sni": False}).sni is False
    with pytest.raises(PrivacyError, match=r"privacy\.profile: expected one of"):
        parse_privacy({"profile": "anonymous"})
    with pytest.raises(PrivacyError, match=r"privacy\.key_file: required"):
        parse_privacy({"profile": "pseudonymised"})
    with pytest.raises(PrivacyError, match=r"privacy\.names: expected bool"):
        parse_privacy({"names": "no"})
    with pytest.raises(PrivacyError, match=r"privacy\.colour: unknown key"):
        parse_privacy({"colour": 1})
    with pytest.raises(PrivacyError, match="at least 32 bytes"):
        PrivacyFilter(PrivacyConfig(profile="pseudonymised", key_file="k"), b"short")


def test_field_table_names_every_field_of_every_kind() -> None:
    rows = {(kind, path) for kind, spec in SPECS.items() for path, _ in field_table(spec)}
    assert ("device", "evidence[].value") in rows and ("dns", "answers[].data") in rows
    assert ("alert", "app.user_agent") in rows and ("flow", "community_id") in rows
    assert len(rows) > 250


# ---- properties ---------------------------------------------------------------------------------------
# Unicast, non-zero MACs (group addresses and the all-zero placeholder name no device and are kept).
macs = (
    st.binary(min_size=6, max_size=6)
    .map(lambda b: ":".join(f"{x:02x}" for x in (b[0] & 0xFE, *b[1:])))
    .filter(lambda m: m != "00:00:00:00:00:00")
)
# Unicast IPv4 outside 127/8 (loopback names no host and is kept, like multicast and broadcast).
v4 = st.integers(0x01000000, 0xDFFFFFFF).filter(lambda n: n >> 24 != 127).map(lambda n: str(ipaddress.IPv4Address(n)))
v6 = st.integers(1 << 125, (1 << 126) - 1).map(lambda n: str(ipaddress.IPv6Address((0x2001 << 112) | n)))
words = st.text(st.characters(whitelist_categories=("L", "N", "Zs"), whitelist_characters="/;()-_"), max_size=20)


@settings(max_examples=300, deadline=None)
@given(macs, st.one_of(v4, v6), words, words)
def test_no_address_survives_in_any_text_field(mac: str, ip: str, before: str, after: str) -> None:
    text = f"{before} {mac.upper()} {after} ({ip}) {after}"
    ev = {**alert(), "msg": text, "app": {"user_agent": text, "host": ip, "indicator": text}}
    for profile in ("pseudonymised", "minimal"):
        out = filt(profile).apply(ev)
        assert out is not None
        blob = repr(out).lower()
        assert mac not in blob
        # In `minimal` an address may only remain as its /24 or /48 network (`1.0.0.0/24` for 1.0.0.0).
        end = r"(?![0-9a-f:/])" if profile == "minimal" else r"(?![0-9a-f:])"
        assert not re.search(r"(?<![0-9a-f:.])" + re.escape(ip.lower()) + end, blob)


@settings(max_examples=200, deadline=None)
@given(macs, v4, st.floats(1.0e9, 2.0e9))
def test_a_pseudonym_never_depends_on_anything_but_key_period_and_value(mac: str, ip: str, ts: float) -> None:
    a = filt().apply(flow(src=ip, ts=ts) | {"src_mac": mac})
    b = filt().apply(flow(src=ip, ts=ts) | {"src_mac": mac.upper(), "dst": "203.0.113.9"})
    assert a is not None and b is not None
    assert a["src_mac"] == b["src_mac"] and a["src"] == b["src"] and a["dst"] != b["dst"]
    assert is_pseudonym(a["src_mac"]) and is_pseudonym(a["src"])
