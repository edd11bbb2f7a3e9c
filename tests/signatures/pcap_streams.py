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
    tcp: dict[Key, list[bytes]] = field(default_factory=dict)  # one stream per connection (port reuse)
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
    # Per direction, one (ISN, segments) per connection: a SYN with a new ISN starts another.
    conns: dict[Key, list[tuple[int | None, list[tuple[int, bytes]]]]] = {}
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
                mine = conns.setdefault(key, [])
                if layer.flags & 0x02:
                    isn = (int(layer.seq) + 1) & 0xFFFFFFFF
                    if not mine or (mine[-1][0] != isn and mine[-1][1]):
                        mine.append((isn, []))
                    elif mine[-1][0] is None:
                        mine[-1] = (isn, mine[-1][1])
                elif payload:
                    if not mine:
                        mine.append((None, []))
                    mine[-1][1].append((int(layer.seq), payload))
            elif payload:
                cap.udp.setdefault(key, []).append(payload)
    for key, connections in conns.items():
        for isn, segs in connections:
            if not segs:
                continue
            base = isn if isn is not None else min(s for s, _ in segs)
            ordered = sorted(((s - base) & 0xFFFFFFFF, d) for s, d in segs)
            out = bytearray()
            for rel, data in ordered:
                if rel > len(out):
                    break
                if rel + len(data) > len(out):
                    out += data[len(out) - rel :]
            cap.tcp.setdefault(key, []).append(bytes(out))
    return cap
