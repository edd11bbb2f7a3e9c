"""Read UDP/TCP payloads per frame number from a capture with scapy (tests only, never per packet).

Tunnels that scapy dissects (GRE, VXLAN, GTP-U with the contrib layer) are followed to the
innermost UDP or TCP layer; Ethernet padding is cut off with the UDP length / IP length.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scapy.all import IP, TCP, UDP, IPv6, Loopback, Padding, PcapReader, Raw, load_contrib  # type: ignore[attr-defined]

load_contrib("gtp")
load_contrib("erspan")


@dataclass(frozen=True)
class L4Payload:
    frame: int
    proto: str
    src: str
    dst: str
    sport: int
    dport: int
    payload: bytes
    seq: int = 0
    cut: bool = False
    """The capture kept fewer bytes than were on the wire (snaplen)."""
    quoted: bool = False
    """The UDP/TCP header is the one quoted inside an ICMP error, not a packet of its own."""

    @property
    def direction(self) -> tuple[str, int, str, int]:
        return (self.src, self.sport, self.dst, self.dport)


def _innermost(pkt: object) -> object | None:
    layer = pkt
    found = None
    while layer is not None and getattr(layer, "name", None) != "NoPayload":
        if isinstance(layer, (UDP, TCP)):
            found = layer
        layer = getattr(layer, "payload", None)
    return found


def payloads(path: Path) -> dict[int, L4Payload]:
    """Frame number (1-based) -> innermost UDP/TCP payload, for frames that have one."""
    out: dict[int, L4Payload] = {}
    with PcapReader(str(path)) as reader:
        for number, pkt in enumerate(reader, start=1):
            top = pkt
            if isinstance(pkt, Loopback) and isinstance(pkt.payload, Raw):
                # BSD loopback family values for IPv6 differ by OS (24, 28, 30); scapy binds
                # only some of them, so the IP version nibble decides.
                raw = bytes(pkt.payload)
                top = IPv6(raw) if raw and raw[0] >> 4 == 6 else IP(raw)
            l4 = _innermost(top)
            if l4 is None:
                continue
            data = bytes(l4.payload)
            pad = l4.getlayer(Padding)
            if pad is not None:
                data = data[: len(data) - len(bytes(pad))]
            cut = bool(pkt.wirelen and pkt.wirelen > len(pkt.original))
            quoted = type(l4).__name__ in ("UDPerror", "TCPerror")
            ip = l4.underlayer
            src, dst = str(getattr(ip, "src", "")), str(getattr(ip, "dst", ""))
            if isinstance(l4, UDP):
                if l4.len is not None and l4.len >= 8:
                    data = data[: l4.len - 8]
                out[number] = L4Payload(number, "udp", src, dst, l4.sport, l4.dport, data, 0, cut, quoted)
            else:
                if isinstance(ip, IP) and ip.len is not None:
                    data = data[: max(0, ip.len - ip.ihl * 4 - l4.dataofs * 4)]
                elif isinstance(ip, IPv6) and ip.plen is not None:
                    data = data[: max(0, ip.plen - l4.dataofs * 4)]
                out[number] = L4Payload(number, "tcp", src, dst, l4.sport, l4.dport, data, l4.seq, cut, quoted)
    return out
