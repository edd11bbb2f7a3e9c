"""Test helper: read a capture with scapy and hand back reassembled TCP streams and UDP datagrams.

Reassembly is deliberately simple (the references' flows are clean): per direction, segments are
sorted by sequence number and appended while contiguous; retransmitted bytes are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet, Padding
from scapy.utils import PcapReader

Key = tuple[str, int, str, int]  # src, sport, dst, dport


@dataclass
class Capture:
    tcp: dict[Key, bytes] = field(default_factory=dict)
    udp: dict[Key, list[bytes]] = field(default_factory=dict)
    first_pkt: dict[Key, int] = field(default_factory=dict)


LINKTYPE_NULL = 0  # BSD loopback: a 4-byte host-order address family, then IP


def _null_link(pkt: Packet) -> Packet:
    data = bytes(pkt)
    return IP(data[4:]) if data[4] >> 4 == 4 else IPv6(data[4:])


def _payload(layer: Packet) -> bytes:
    data = bytes(layer.payload)
    pad = layer.payload.getlayer(Padding)  # Ethernet minimum-frame padding is not payload
    return data[: len(data) - len(pad.load)] if pad is not None else data


def _ip_of(layer: object) -> tuple[str, str] | None:
    under = layer.underlayer  # type: ignore[attr-defined]
    while under is not None and not isinstance(under, IP | IPv6):
        under = under.underlayer
    if under is None:
        return None
    return under.src, under.dst


def read_capture(path: Path) -> Capture:
    cap = Capture()
    segments: dict[Key, list[tuple[int, bytes]]] = {}
    isn: dict[Key, int] = {}
    with PcapReader(str(path)) as reader:
        linktype = getattr(reader, "linktype", None)
        for number, raw in enumerate(reader, 1):
            pkt = _null_link(raw) if linktype == LINKTYPE_NULL else raw
            layer = pkt.getlayer(TCP) or pkt.getlayer(UDP)
            # getlayer returns the outermost; tunnels (GRE, VXLAN) carry the flow deeper.
            while layer is not None:
                inner = layer.payload.getlayer(TCP) or layer.payload.getlayer(UDP)
                if inner is None:
                    break
                layer = inner
            if layer is None:
                continue
            addrs = _ip_of(layer)
            if addrs is None:
                continue
            key = (addrs[0], int(layer.sport), addrs[1], int(layer.dport))
            cap.first_pkt.setdefault(key, number)
            payload = _payload(layer)
            if isinstance(layer, TCP):
                if layer.flags & 0x02:
                    isn[key] = (int(layer.seq) + 1) & 0xFFFFFFFF
                if payload and not (layer.flags & 0x02):
                    segments.setdefault(key, []).append((int(layer.seq), payload))
            else:
                if payload:
                    cap.udp.setdefault(key, []).append(payload)
    for key, segs in segments.items():
        base = isn.get(key, min(s for s, _ in segs))
        ordered = sorted(((s - base) & 0xFFFFFFFF, d) for s, d in segs)
        out = bytearray()
        for rel, data in ordered:
            if rel > len(out):
                break
            if rel + len(data) > len(out):
                out += data[len(out) - rel :]
        cap.tcp[key] = bytes(out)
    return cap
