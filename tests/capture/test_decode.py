"""L2-L4 decoder: layouts, link types, tunnels and hostile headers."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from capture.decode import MAX_IPV6_EXT_HEADERS, decode
from capture.errors import DecodeError
from capture.flows import FlowTable
from capture.observe import Observer
from capture.packet import ip_text, mac_text

A, B = "192.0.2.10", "198.51.100.20"
MAC_A, MAC_B = "00:11:22:33:44:55", "66:77:88:99:aa:bb"


def eth(payload: object) -> bytes:
    return bytes(Ether(src=MAC_A, dst=MAC_B) / payload)  # type: ignore[operator]


def test_ethernet_ipv4_tcp_offsets() -> None:
    raw = eth(IP(src=A, dst=B, ttl=61) / TCP(sport=40000, dport=443, flags="S", window=64240) / b"hello")
    p = decode(1.5, 1, raw)
    assert (mac_text(p.src_mac), mac_text(p.dst_mac)) == (MAC_A, MAC_B)
    assert (ip_text(p.src), ip_text(p.dst), p.ttl, p.proto) == (A, B, 61, 6)
    assert (p.sport, p.dport, p.tcp_flags, p.tcp_window) == (40000, 443, 0x02, 64240)
    assert p.ip_off == 14 and p.l4_off == 34 and p.payload == b"hello"
    assert p.ip_len == 20 + 20 + 5


def test_ethernet_padding_is_not_payload() -> None:
    raw = eth(IP(src=A, dst=B) / UDP(sport=1, dport=2) / b"ab") + b"\0" * 20
    p = decode(0, 1, raw)
    assert p.payload == b"ab"


def test_vlan_and_qinq() -> None:
    p = decode(0, 1, eth(Dot1Q(vlan=20) / IP(src=A, dst=B) / UDP(sport=5, dport=53)))
    assert p.vlans == (20,) and p.dport == 53
    p = decode(
        0,
        1,
        bytes(Ether(src=MAC_A, dst=MAC_B, type=0x88A8) / Dot1AD(vlan=100) / Dot1Q(vlan=30) / IP(src=A, dst=B) / UDP()),
    )
    assert p.vlans == (100, 30) and p.ip_version == 4


def test_too_many_vlan_tags() -> None:
    raw = bytes(Ether(src=MAC_A, dst=MAC_B, type=0x8100)) + b"\x00\x01\x81\x00" * 9 + b"\x00\x01\x08\x00"
    with pytest.raises(DecodeError) as ei:
        decode(0, 1, raw)
    assert ei.value.reason == "vlan.too_many_tags"


def test_linux_sll_and_sll2_and_raw() -> None:
    ip = bytes(IP(src=A, dst=B) / UDP(sport=68, dport=67))
    sll = struct.pack("!HHH8sH", 0, 1, 6, bytes.fromhex("001122334455") + b"\0\0", 0x0800) + ip
    p = decode(0, 113, sll)
    assert mac_text(p.src_mac) == MAC_A and p.dport == 67
    sll2 = struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, bytes.fromhex("001122334455") + b"\0\0") + ip
    p = decode(0, 276, sll2)
    assert mac_text(p.src_mac) == MAC_A and p.sport == 68
    p = decode(0, 101, ip)
    assert p.ip_version == 4 and p.src_mac == b""


def test_ipv6_extension_headers() -> None:
    pkt = (
        IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting()
        / IPv6ExtHdrDestOpt()
        / TCP(dport=80)
    )
    p = decode(0, 1, eth(pkt))
    assert p.ip_version == 6 and p.proto == 6 and p.dport == 80


def test_ipv6_extension_chain_too_long() -> None:
    pkt = IPv6(src="2001:db8::1", dst="2001:db8::2")
    for _ in range(MAX_IPV6_EXT_HEADERS + 4):
        pkt = pkt / IPv6ExtHdrDestOpt()
    with pytest.raises(DecodeError) as ei:
        decode(0, 1, eth(pkt / UDP()))
    assert ei.value.reason == "ipv6.too_many_ext_headers"


def test_fragments_counted_not_reassembled() -> None:
    first = decode(0, 1, eth(IP(src=A, dst=B, flags="MF", frag=0) / UDP(sport=1, dport=2) / (b"x" * 100)))
    later = decode(0, 1, eth(IP(src=A, dst=B, proto=17, frag=20) / (b"y" * 50)))
    assert first.frag and first.dport == 2
    assert later.frag and later.l4_off == -1
    p6 = decode(
        0, 1, eth(IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(offset=10, nh=17) / (b"z" * 16))
    )
    assert p6.frag


@pytest.mark.parametrize(
    ("raw_fn", "reason"),
    [
        (lambda: eth(IP(src=A, dst=B))[:20], "ipv4.truncated"),
        (lambda: bytes(Ether(type=0x0800)) + bytes(IP(src=A, dst=B, ihl=3) / UDP()), "ipv4.bad_ihl"),
        (lambda: eth(IP(src=A, dst=B) / TCP())[:40], "tcp.truncated"),
        (lambda: eth(IP(src=A, dst=B) / TCP(dataofs=3)), "tcp.bad_offset"),
        (lambda: eth(IP(src=A, dst=B) / TCP(dataofs=15)), "tcp.bad_offset"),
        (lambda: eth(IP(src=A, dst=B) / UDP(len=4)), "udp.bad_length"),
        (lambda: b"\x00" * 10, "eth.truncated"),
    ],
)
def test_hostile_headers(raw_fn: object, reason: str) -> None:
    with pytest.raises(DecodeError) as ei:
        decode(0, 1, raw_fn())  # type: ignore[operator]
    assert ei.value.reason == reason


def test_unknown_linktype() -> None:
    with pytest.raises(DecodeError) as ei:
        decode(0, 999, b"\0" * 40)
    assert ei.value.reason == "link.unsupported"


def test_tunnels_are_decapsulated() -> None:
    inner = IP(src=A, dst=B) / TCP(sport=1234, dport=80)
    p = decode(0, 1, eth(IP(src="203.0.113.1", dst="203.0.113.2") / GRE() / inner))
    assert (ip_text(p.src), p.dport, p.tunnel) == (A, 80, 1)
    vx = (
        IP(src="203.0.113.1", dst="203.0.113.2")
        / UDP(sport=5555, dport=4789)
        / VXLAN(vni=7)
        / Ether(src=MAC_B, dst=MAC_A)
        / inner
    )
    p = decode(0, 1, eth(vx))
    assert (ip_text(p.src), p.dport, mac_text(p.src_mac), p.tunnel) == (A, 80, MAC_B, 1)
    gtp = (
        IP(src="203.0.113.1", dst="203.0.113.2")
        / UDP(sport=2152, dport=2152)
        / (bytes.fromhex("30ff") + struct.pack("!HI", len(bytes(inner)), 1) + bytes(inner))
    )
    p = decode(0, 1, eth(gtp))
    assert (ip_text(p.dst), p.dport) == (B, 80)


def test_nested_tunnels_are_bounded() -> None:
    pkt = IP(src=A, dst=B) / TCP()
    for _ in range(6):
        pkt = IP(src="203.0.113.1", dst="203.0.113.2") / GRE() / pkt
    with pytest.raises(DecodeError) as ei:
        decode(0, 1, eth(pkt))
    assert ei.value.reason == "tunnel.too_deep"


def test_arp_is_l2_with_offset() -> None:
    p = decode(0, 1, eth(ARP(op=2, psrc=A, hwsrc=MAC_A, pdst=B)))
    assert p.ip_version == 0 and p.ip_off == 14


SEEDS = [
    eth(IP(src=A, dst=B) / TCP(sport=1, dport=443, flags="PA") / b"\x16\x03\x01\x00\x10\x01\x00\x00\x0c"),
    eth(
        IP(src=A, dst=B)
        / UDP(sport=68, dport=67)
        / (b"\x01\x01\x06\x00" + b"\0" * 232 + b"\x63\x82\x53\x63\x35\x01\x01\xff")
    ),
    eth(
        IPv6(src="2001:db8::1", dst="ff02::fb")
        / UDP(sport=5353, dport=5353)
        / b"\0\0\0\0\0\1\0\0\0\0\0\0\x05_ipps\x04_tcp\x05local\0\0\x0c\0\1"
    ),
    eth(IP(src=A, dst=B) / ICMP()),
    eth(IP(src=A, dst=B) / TCP(sport=2, dport=22, flags="S", options=[("MSS", 1460), ("NOP", None), ("WScale", 7)])),
]


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=8),
    st.integers(0, 220),
    st.sampled_from([1, 101, 113, 276, 0]),
)
def test_mutated_frames_decode_or_raise_decode_error(
    seed: bytes, flips: list[tuple[int, int]], cut: int, linktype: int
) -> None:
    data = bytearray(seed)
    for pos, val in flips:
        if pos < len(data):
            data[pos] = val
    frame = bytes(data[: max(cut, 1)])
    table = FlowTable()
    obs = Observer()
    try:
        p = decode(0.0, linktype, frame)
    except DecodeError:
        return
    flow, d = table.update(p) if p.ip_version and p.l4_off >= 0 else (None, 0)
    obs.packet(p, flow, d)  # parsers behind the observer count errors, never raise


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([1, 101, 113, 276, 0, 108]))
def test_random_bytes_decode_or_raise_decode_error(data: bytes, linktype: int) -> None:
    try:
        decode(0.0, linktype, data)
    except DecodeError as e:
        assert e.reason
