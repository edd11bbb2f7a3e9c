"""Ethernet/IPv4/IPv6 frames built with struct for rule tests (documentation addresses only)."""

from __future__ import annotations

import ipaddress
import struct

from capture.decode import decode
from capture.flows import FlowConfig, FlowTable
from capture.frame import LINKTYPE_ETHERNET
from capture.packet import Packet

CLIENT = "192.0.2.10"
SERVER = "198.51.100.20"
MAC_C = bytes.fromhex("020000000001")
MAC_S = bytes.fromhex("020000000002")


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src: str, dst: str, proto: int, l4: bytes, ttl: int = 64) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, ttl, proto, 0,
                      ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)  # fmt: skip
    hdr = hdr[:10] + struct.pack("!H", _csum(hdr)) + hdr[12:]
    return hdr + l4


def ether(ip: bytes, src_mac: bytes = MAC_C, dst_mac: bytes = MAC_S, ethertype: int = 0x0800) -> bytes:
    return dst_mac + src_mac + struct.pack("!H", ethertype) + ip


def tcp(sport: int, dport: int, flags: int, payload: bytes = b"", seq: int = 1000, ack: int = 0) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def icmp_echo(ident: int, seq: int, payload: bytes = b"abcdefgh", type_: int = 8, code: int = 0) -> bytes:
    return struct.pack("!BBHHH", type_, code, 0, ident, seq) + payload


def pkt_tcp(payload: bytes = b"", flags: int = 0x18, src: str = CLIENT, dst: str = SERVER, sport: int = 40000,
            dport: int = 80, ts: float = 1.0, seq: int = 1000, ttl: int = 64) -> Packet:  # fmt: skip
    return decode(ts, LINKTYPE_ETHERNET, ether(ipv4(src, dst, 6, tcp(sport, dport, flags, payload, seq), ttl)))


def pkt_udp(payload: bytes, src: str = CLIENT, dst: str = SERVER, sport: int = 40000, dport: int = 53,
            ts: float = 1.0) -> Packet:  # fmt: skip
    return decode(ts, LINKTYPE_ETHERNET, ether(ipv4(src, dst, 17, udp(sport, dport, payload))))


def pkt_icmp(ident: int = 7, seq: int = 1, type_: int = 8, code: int = 0, ts: float = 1.0,
             src: str = CLIENT, dst: str = SERVER) -> Packet:  # fmt: skip
    return decode(ts, LINKTYPE_ETHERNET, ether(ipv4(src, dst, 1, icmp_echo(ident, seq, type_=type_, code=code))))


class Conversation:
    """A TCP connection pushed through a real FlowTable: handshake, then data either way."""

    def __init__(self, sport: int = 40000, dport: int = 80, handshake: bool = True, depth: int = 4096) -> None:
        self.table = FlowTable(FlowConfig(stream_depth=depth))
        self.sport, self.dport = sport, dport
        self.seq = [1000, 5000]
        self.ts = 1.0
        self.last: tuple[Packet, object, int] | None = None
        if handshake:
            self.send(0, b"", 0x02)
            self.seq[0] += 1
            self.send(1, b"", 0x12)
            self.seq[1] += 1
            self.send(0, b"", 0x10)

    def send(self, d: int, payload: bytes, flags: int = 0x18) -> tuple[Packet, object, int]:
        self.ts += 0.01
        if d == 0:
            p = pkt_tcp(payload, flags, CLIENT, SERVER, self.sport, self.dport, self.ts, self.seq[0])
        else:
            p = pkt_tcp(payload, flags, SERVER, CLIENT, self.dport, self.sport, self.ts, self.seq[1])
        self.seq[d] += len(payload)
        flow, direction = self.table.update(p)
        self.last = (p, flow, direction)
        return p, flow, direction
