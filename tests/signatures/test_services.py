"""Service, name and banner knowledge, and evidence built from each observation type."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signatures.dhcp_fp import DhcpDatabase
from signatures.evidence import evidence_from_observation, names_from_observation, p0f_hint
from signatures.services import (
    hostname_hints,
    mdns_service_hint,
    model_hint,
    oui_vendor_hint,
    parse_txt,
    ssdp_server_hints,
    ssdp_type_hint,
    txt_hints,
)


def test_mdns_service_types() -> None:
    assert mdns_service_hint("Kitchen._googlecast._tcp.local")[1].device_type == "tv/streamer"  # type: ignore[index]
    assert mdns_service_hint("_ipp._tcp.local.")[0] == "_ipp._tcp"  # type: ignore[index]
    assert mdns_service_hint("HP LaserJet._pdl-datastream._tcp.local")[1].device_type == "printer"  # type: ignore[index]
    assert mdns_service_hint("x._companion-link._tcp.local")[1].vendor == "Apple"  # type: ignore[index]
    assert mdns_service_hint("printer.example.org") is None


def test_txt_keys() -> None:
    txt = parse_txt('"md=Chromecast" "fn=Salle 12" "ty=HP LaserJet Pro M404" "am=AppleTV6,2" "say=\\"hi\\""')
    assert txt["md"] == "Chromecast" and txt["say"] == '"hi"'
    got = {v: h.device_type for v, h in txt_hints(txt)}
    assert got == {"md=Chromecast": "tv/streamer", "am=AppleTV6,2": "tv/streamer", "ty=HP LaserJet Pro M404": "printer"}
    assert model_hint("MacBookAir10,1").device_type == "laptop"  # type: ignore[union-attr]
    assert model_hint("iMac21,1").device_type == "desktop"  # type: ignore[union-attr]
    assert model_hint("AudioAccessory5,1").device_type == "iot"  # type: ignore[union-attr]
    assert model_hint("Thing 3000") is None


def test_ssdp() -> None:
    assert ssdp_type_hint("urn:schemas-upnp-org:device:MediaRenderer:1").device_type == "tv/streamer"  # type: ignore[union-attr]
    assert ssdp_type_hint("roku:ecp").vendor == "Roku"  # type: ignore[union-attr]
    assert ssdp_type_hint("urn:schemas-upnp-org:device:InternetGatewayDevice:1").device_type == "network equipment"  # type: ignore[union-attr]
    assert ssdp_type_hint("upnp:rootdevice") is None
    win = ssdp_server_hints("Microsoft-Windows/10.0 UPnP/1.0 UPnP-Device-Host/1.0")
    assert [(h.os_family, h.os_version) for h in win] == [("Windows", "10")]
    hue = ssdp_server_hints("Linux/3.14.0 UPnP/1.0 IpBridge/1.26.0")
    assert [h.os_family for h in hue] == ["Linux", None] and hue[1].vendor == "Signify"


@pytest.mark.parametrize(
    ("name", "device_type", "os_family"),
    [
        ("Lucas-iPhone", "phone", "iOS"),
        ("iPad", "tablet", "iOS"),
        ("MacBook-Air-de-Claire", "laptop", "macOS"),
        ("Galaxy-A54-5G", "phone", "Android"),
        ("Galaxy-Tab-S8", "tablet", "Android"),
        ("android-1a2b3c4d5e6f7a8b", None, "Android"),
        ("DESKTOP-AB12CD3", "desktop", "Windows"),
        ("LAPTOP-7K2M9QXZ", "laptop", "Windows"),
        ("HP3A7F2C", "printer", None),
        ("BRW0080927AFBEA", "printer", None),
        ("SEP001122334455", "voip phone", None),
        ("PS5-123", "game console", None),
        ("STAFF-LT-042", "laptop", None),
        ("CLASS-PC-07", "desktop", None),
        ("raspberrypi.local", "iot", "Linux"),
    ],
)
def test_hostnames(name: str, device_type: str | None, os_family: str | None) -> None:
    hints = hostname_hints(name)
    assert hints, name
    assert hints[0].device_type == device_type and hints[0].os_family == os_family


def test_plain_names_say_nothing() -> None:
    assert hostname_hints("fileserver") == [] and hostname_hints("PCB-DESIGN") == []


def test_oui_and_p0f_maps() -> None:
    assert oui_vendor_hint("Hangzhou Hikvision Digital Technology Co.,Ltd.").device_type == "camera"  # type: ignore[union-attr]
    assert oui_vendor_hint("Apple, Inc.") is None
    assert p0f_hint("Windows 7 or 8").os_family == "Windows"  # type: ignore[union-attr]
    assert p0f_hint("Linux 3.11 and newer").os_family == "Linux"  # type: ignore[union-attr]
    assert p0f_hint("Mac OS X").os_family == "Darwin"  # type: ignore[union-attr]
    assert p0f_hint("???") is None


def ev(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "ts": 5.0, "src_mac": "00:13:72:c4:f1:e1", "src": "192.0.2.5", **fields}


def test_evidence_per_observation_type() -> None:
    db = DhcpDatabase.load()
    d = evidence_from_observation(ev("dhcp", msg_type=1, params=[1, 3, 6, 15, 26, 28, 51, 58, 59, 43, 114],
                                     vendor_class="android-dhcp-14", hostname="Pixel-8"), db)  # fmt: skip
    by = {e.source: e for e in d}
    assert by["dhcp"].suggests.os_family == "Android" and "prefix" in by["dhcp"].note
    assert by["dhcp_vendor_class"].suggests.os_version == "14"
    assert by["dhcp_hostname"].suggests.device_type == "phone"
    assert all(e.first_seen == e.last_seen == 5.0 for e in d)
    assert evidence_from_observation(ev("dhcp", msg_type=5, params=[1, 3, 6], hostname="Pixel-8"), db) == []
    six = evidence_from_observation(ev("dhcp6", oro=[17, 23, 24], enterprise=311, vendor_class="MSFT 5.0"), db)
    assert [e.suggests.os_family for e in six] == ["Windows"]
    ssh = evidence_from_observation(ev("ssh", banner="SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10", role="server"))
    assert ssh[0].suggests.os_family == "Linux" and ssh[0].suggests.device_type == "server"
    assert ssh[0].suggests.os_version == "Ubuntu 22.04"
    cisco = evidence_from_observation(ev("ssh", banner="SSH-2.0-Cisco-1.25", role="server"))
    assert cisco[0].suggests.device_type == "network equipment"
    syn = evidence_from_observation(ev("tcp_syn", p0f="Windows NT kernel", ttl=128, synack=False))
    assert [e.source for e in syn] == ["tcp_syn"]
    ttl = evidence_from_observation(ev("tcp_syn", p0f=None, ttl=127, synack=False))
    assert ttl[0].source == "ttl" and ttl[0].suggests.os_family == "Windows"
    probe = evidence_from_observation(ev("dns", proto_name="dns", response=False, query="www.msftconnecttest.com"))
    assert probe[0].suggests.os_family == "Windows"
    http = evidence_from_observation(ev("http", host="captive.apple.com", user_agent="CaptiveNetworkSupport-407"))
    assert [e.source for e in http] == ["http_host"]
    nb = evidence_from_observation(ev("nbns", name="DC01", suffix=0x1C, response=False, opcode=5))
    assert nb[0].suggests.device_type == "server"
    assert evidence_from_observation(ev("nbns", name="LAPTOP-7K2M9QXZ", suffix=0, response=False, opcode=0)) == []
    msearch = evidence_from_observation(ev("ssdp", method="M-SEARCH", st="urn:dial-multiscreen-org:service:dial:1",
                                           user_agent="Microsoft-Windows/10.0 UPnP/1.0"))  # fmt: skip
    assert [e.source for e in msearch] == ["ssdp_user_agent"]  # what a client looks for is not what it is
    assert evidence_from_observation(ev("tls_client", ja4="t13d1516h2_8daaf6152771_d8a2da3f94cd")) == []


def test_names_from_observation() -> None:
    mdns = ev("dns", proto_name="mdns", response=True, answers=[
        {"name": "Salle-12.local", "type": 1, "ttl": 120, "data": "192.0.2.5"},
        {"name": "_ipp._tcp.local", "type": 12, "ttl": 120, "data": "x._ipp._tcp.local"},
    ])  # fmt: skip
    assert names_from_observation(mdns) == [("Salle-12.local", "mdns")]
    extra = ev("dns", proto_name="mdns", response=True, answers=[], additionals=[
        {"name": "Salle-12.local", "type": 28, "ttl": 120, "data": "2001:db8::5"},
        {"name": "x._ipp._tcp.local", "type": 16, "ttl": 120, "data": '"ty=Brother HL-L2350DW series"'},
    ])  # fmt: skip
    assert names_from_observation(extra) == [("Salle-12.local", "mdns")]
    assert [e.suggests.device_type for e in evidence_from_observation(extra)] == ["printer"]
    assert names_from_observation(ev("dhcp", msg_type=3, hostname="CLASS-PC-07")) == [("CLASS-PC-07", "dhcp")]
    assert names_from_observation(ev("dhcp", msg_type=5, hostname="CLASS-PC-07")) == []
    assert names_from_observation(ev("dns", proto_name="mdns", response=False, answers=[])) == []


# Field types as docs/events.md defines them (text or null, int or null, bool), values arbitrary.
_text = st.one_of(st.none(), st.text(max_size=40))
_int = st.one_of(st.none(), st.integers(-5, 70000))
_TEXT = ("hostname", "vendor_class", "query", "proto_name", "name", "method", "nt", "st", "server", "user_agent",
         "host", "banner", "role", "p0f", "fqdn", "client_id", "duid")  # fmt: skip
_INT = ("msg_type", "suffix", "opcode", "ttl", "enterprise")
_answer = st.fixed_dictionaries(
    {"name": st.text(max_size=30), "type": st.sampled_from([1, 12, 16, 28, 33]), "data": st.text(max_size=60)}
)
_event = st.fixed_dictionaries(
    {"type": st.sampled_from(["dhcp", "dhcp6", "dns", "nbns", "ssdp", "http", "ssh", "tcp_syn", "flow", "x"]),
     "ts": st.floats(0, 2e9)},
    optional={k: _text for k in _TEXT}
    | {k: _int for k in _INT}
    | {"response": st.booleans(), "synack": st.booleans(), "params": st.lists(st.integers(0, 255), max_size=20),
       "oro": st.lists(st.integers(0, 300), max_size=8), "answers": st.lists(_answer, max_size=5)},
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_event)
def test_evidence_from_any_event_shape(event: dict[str, Any]) -> None:
    for e in evidence_from_observation(event):
        assert 0 < e.weight <= 1 and e.source and len(e.value) <= 200
    names_from_observation(event)
