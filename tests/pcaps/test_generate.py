"""The committed fixture captures are exactly what pcaps/generate.py makes, and contain what
pcaps/README.md and pcaps/truth.json say (checked by reading them back with scapy).
"""

from __future__ import annotations

import ipaddress
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.error import Scapy_Exception
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dhcp6 import DHCP6_Solicit, DHCP6OptVendorClass
from scapy.layers.dns import DNS
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.utils import rdpcap

from pcaps import generate

REPO = Path(__file__).resolve().parents[2]
PCAPS = REPO / "pcaps"
TRUTH = json.loads((PCAPS / "truth.json").read_text())["captures"]
FILES = sorted(generate.build_all())
# Start of the school morning, 2026-09-07 07:30:00 UTC.
START = 1788766200

DOC_NETS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
V4_SPECIAL = {"0.0.0.0", "255.255.255.255", "224.0.0.251", "224.0.0.252", "239.255.255.250"}


def _read(name: str) -> list:
    return list(rdpcap(str(PCAPS / name)))


def test_start_constant_matches_generator() -> None:
    from pcaps._wire import START_US

    assert START_US == START * 1_000_000


@pytest.fixture(scope="module")
def fresh_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pcaps")
    generate.write_all(out)
    return out


@pytest.mark.parametrize("name", FILES)
def test_committed_file_is_what_the_generator_makes(name: str, fresh_dir: Path) -> None:
    committed = (PCAPS / name).read_bytes()
    fresh = (fresh_dir / name).read_bytes()
    assert fresh == committed, f"{name} differs from a fresh generation: run python -m pcaps.generate"
    assert len(committed) < 200_000, f"{name} is {len(committed)} bytes"


def test_generation_does_not_depend_on_hash_seed_or_process(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-m", "pcaps.generate", str(tmp_path)], cwd=REPO, env=env, check=True,
                   capture_output=True)  # fmt: skip
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (PCAPS / name).read_bytes(), name


def _linktype(name: str) -> int:
    head = (PCAPS / name).read_bytes()[:24]
    return int(struct.unpack("<I", head[20:24])[0])


@pytest.mark.parametrize(
    ("name", "linktype"), [("school_morning.pcap", 1), ("sll.pcap", 113), ("sll2.pcap", 276), ("raw_ip.pcap", 101)]
)
def test_pcap_link_types(name: str, linktype: int) -> None:
    assert _linktype(name) == linktype
    assert TRUTH[name]["linktype"] == linktype
    assert len(_read(name)) >= 12 or name == "school_morning.pcap"


def test_pcapng_holds_the_same_frames_as_pcap() -> None:
    a, b = _read("school_morning.pcap"), _read("school_morning.pcapng")
    assert len(a) == len(b) > 1000
    assert all(bytes(x) == bytes(y) and x.time == y.time for x, y in zip(a, b, strict=True))
    s1, s2 = _read("sll2.pcap"), _read("sll2.pcapng")
    assert [bytes(p) for p in s1] == [bytes(p) for p in s2]


def _check_addresses(pkts: list) -> None:
    for i, p in enumerate(pkts, 1):
        if IP in p:
            for a in (p[IP].src, p[IP].dst):
                ok = a in V4_SPECIAL or any(ipaddress.ip_address(a) in n for n in DOC_NETS)
                assert ok, f"packet {i}: {a} outside the documentation ranges"
        if IPv6 in p:
            for a in (p[IPv6].src, p[IPv6].dst):
                ip6 = ipaddress.ip_address(a)
                ok = ip6 in ipaddress.ip_network("2001:db8::/32") or ip6.is_link_local or ip6.is_multicast
                assert ok or a == "::", f"packet {i}: {a} outside 2001:db8::/32"


def test_school_morning_devices_and_their_dhcp_shapes() -> None:
    pkts = _read("school_morning.pcap")
    assert 1000 < len(pkts) < 5000
    times = [float(p.time) for p in pkts]
    assert times == sorted(times) and START <= times[0] < START + 5 and times[-1] < START + 3600
    _check_addresses(pkts)
    devices = TRUTH["school_morning.pcap"]["devices"]
    seen_macs = {p[Ether].src for p in pkts}
    assert seen_macs == set(devices), seen_macs ^ set(devices)
    discovers: dict[str, dict] = {}
    for p in pkts:
        if DHCP in p:
            opts = {o[0]: o[1] for o in p[DHCP].options if isinstance(o, tuple)}
            if opts.get("message-type") == 1:
                discovers[p[Ether].src] = opts
    clients = {mac for mac, d in devices.items() if "dhcp_params" in d}
    assert set(discovers) == clients
    for mac, opts in discovers.items():
        d = devices[mac]
        assert list(opts["param_req_list"]) == d["dhcp_params"], mac
        assert opts.get("vendor_class_id", b"").decode() == (d["dhcp_vendor_class"] or ""), mac
        assert opts.get("hostname", b"").decode() == (d["hostname"] or ""), mac
    a, b = (m for m, d in devices.items() if d.get("same_device_as"))
    assert discovers[a]["client_id"] == discovers[b]["client_id"] and a != b
    assert devices[a]["randomized_mac"] and devices[b]["randomized_mac"]


def test_school_morning_protocol_mix() -> None:
    pkts = _read("school_morning.pcap")
    raw = b"".join(bytes(p) for p in pkts)
    for needle in (b"md=Chromecast", b"ty=HP LaserJet Pro M404dn", b"_companion-link", b"_airplay", b"_printer",
                   b"SERVER: Linux UPnP/1.0 Sonos", b"M-SEARCH", b"CrOS", b"iPhone OS 17_6", b"Windows NT 10.0",
                   b"Android 10", b"SSH-2.0-OpenSSH_9.6p1", b"classroom.google.com", b"Microsoft NCSI"):  # fmt: skip
        assert needle in raw, needle
    syns = {(p[IP].src, p[IP].ttl, p[TCP].window) for p in pkts if TCP in p and p[TCP].flags == "S"}
    assert ("192.0.2.101", 128, 64240) in syns and ("192.0.2.103", 64, 65535) in syns
    fins = sum(1 for p in pkts if TCP in p and p[TCP].flags.F)
    rsts = sum(1 for p in pkts if TCP in p and p[TCP].flags.R)
    assert fins > 40 and rsts >= 1
    udp_ports = {p[UDP].dport for p in pkts if UDP in p}
    assert {53, 67, 68, 137, 1900, 5353, 5355, 443} <= udp_ports


def test_ipv6_only_capture() -> None:
    pkts = _read("ipv6_only.pcap")
    _check_addresses(pkts)
    assert not any(IP in p or ARP in p for p in pkts)
    vendor = [p[DHCP6OptVendorClass] for p in pkts if DHCP6_Solicit in p and DHCP6OptVendorClass in p]
    assert [v.enterprisenum for v in vendor] == [311]
    assert any(IPv6ExtHdrHopByHop in p for p in pkts)
    assert any(IPv6ExtHdrDestOpt in p and TCP in p for p in pkts)
    assert any(p[IPv6].dst == "ff02::fb" for p in pkts)


def test_vlan_capture() -> None:
    pkts = _read("vlan.pcap")
    _check_addresses(pkts)
    vids = {p[Dot1Q].vlan for p in pkts if Dot1Q in p}
    assert vids == {10, 20, 30}
    qinq = [p for p in pkts if Dot1AD in p]
    assert qinq and all(p[Ether].type == 0x88A8 and p[Dot1AD].vlan == 100 for p in qinq)
    assert all(Dot1Q in p for p in pkts), "every frame is tagged"
    for mac, d in TRUTH["vlan.pcap"]["devices"].items():
        if "vlan" in d:
            tags = {p[Dot1Q].vlan for p in pkts if p[Ether].src == mac}
            assert tags == {d["vlan"]}, mac


def test_lan_attacks_capture() -> None:
    pkts = _read("lan_attacks.pcap")
    _check_addresses(pkts)
    offers = {p[IP].src for p in pkts if BOOTP in p and p[BOOTP].op == 2}
    assert offers == {"192.0.2.1", "192.0.2.250"}
    spoof = {p[ARP].hwsrc for p in pkts if ARP in p and p[ARP].op == 2 and p[ARP].psrc == "192.0.2.1"}
    assert spoof == {"00:1b:54:0a:00:01", "2c:f0:5d:6e:7f:80"}
    syn = [p for p in pkts if TCP in p and p[TCP].flags == "S" and p[IP].src == "192.0.2.66"]
    horizontal = [p for p in syn if p[TCP].dport == 445 and p[IP].dst != "192.0.2.10"]
    assert len({p[IP].dst for p in horizontal}) == 60
    assert float(horizontal[-1].time - horizontal[0].time) < 4.0
    assert len({p[TCP].dport for p in syn if p[IP].dst == "192.0.2.10"}) == 200
    assert sum(1 for p in pkts if DNS in p and p[IP].dst == "203.0.113.53") == 3
    raw = b"".join(bytes(p) for p in pkts)
    for needle in (b"User-Agent: sqlmap/", b"GET /wp-login.php", b"\x04evil\x07example\x03com", b"malware.example.net"):
        assert needle in raw, needle
    assert len(TRUTH["lan_attacks.pcap"]["detections"]) == 9


def test_malformed_capture_matches_its_notes() -> None:
    pkts = _read("malformed.pcap")
    notes = TRUTH["malformed.pcap"]["packets"]
    assert len(pkts) > len(notes) >= 20
    reasons = {n["reason"] for n in notes} - {None}
    assert {"ipv4.truncated", "tcp.truncated", "dns.compression_loop", "ipv6.too_many_ext_headers"} <= reasons
    assert len(bytes(pkts[1])) == 26  # Ethernet + 12 bytes of IPv4 header
    data = (PCAPS / "malformed.pcap").read_bytes()
    cut = [(caplen, orig) for caplen, orig in _records(data) if caplen < orig]
    assert len(cut) == 1 and cut[0][0] == 96


def _records(data: bytes) -> list[tuple[int, int]]:
    off, out = 24, []
    while off < len(data):
        caplen, orig = struct.unpack_from("<II", data, off + 8)
        out.append((caplen, orig))
        off += 16 + caplen
    return out


def test_broken_files() -> None:
    info = TRUTH["truncated_file.pcap"]
    data = (PCAPS / "truncated_file.pcap").read_bytes()
    assert len(data) == info["file_size"]
    off, n = 24, 0
    while off + 16 + struct.unpack_from("<I", data, off + 8)[0] <= len(data):
        off += 16 + struct.unpack_from("<I", data, off + 8)[0]
        n += 1
    assert (off, n) == (info["error_offset"], info["whole_records"])
    assert off < len(data)
    with pytest.raises(Scapy_Exception):
        rdpcap(str(PCAPS / "not_a_capture.pcap"))
