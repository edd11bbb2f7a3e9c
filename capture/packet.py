"""The decoded L2-L4 view of one frame: offsets into the frame's bytes, no payload copies.

A `Packet` is filled by `capture.decode.Decoder`; fields a layer does not have keep their
defaults (0, b"", None). Addresses are raw bytes (4 or 16 long); turn them into text with
`ip_text` only when an event is written.
"""

from __future__ import annotations

import ipaddress

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMP6 = 58

PROTO_NAMES = {PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_ICMP: "icmp", PROTO_ICMP6: "icmp6"}

# TCP flag bits (RFC 9293 and RFC 3168).
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80


class Packet:
    """Decoded view of a frame. Mutable only while the decoder fills it."""

    __slots__ = (
        "data",
        "dport",
        "dst",
        "dst_mac",
        "ethertype",
        "frag",
        "icmp_code",
        "icmp_type",
        "ip_len",
        "ip_off",
        "ip_version",
        "l4_off",
        "linktype",
        "payload_len",
        "payload_off",
        "proto",
        "sport",
        "src",
        "src_mac",
        "tcp_ack",
        "tcp_flags",
        "tcp_opts_len",
        "tcp_opts_off",
        "tcp_seq",
        "tcp_window",
        "ts",
        "ttl",
        "tunnel",
        "vlans",
    )

    def __init__(self, ts: float, linktype: int, data: bytes) -> None:
        self.ts = ts  # seconds since the epoch, from the capture
        self.linktype = linktype
        self.data = data
        self.src_mac: bytes = b""
        self.dst_mac: bytes = b""
        self.vlans: tuple[int, ...] = ()
        self.ethertype = 0
        self.ip_version = 0  # 0 when there is no IP layer (ARP, LLDP, ...)
        self.src: bytes = b""
        self.dst: bytes = b""
        self.proto = 0  # IP protocol number of the transport (after IPv6 extension headers)
        self.ttl = 0  # IPv4 TTL or IPv6 hop limit
        self.ip_off = -1
        self.ip_len = 0  # bytes of the IP packet as its header announces, capped to what was captured
        self.l4_off = -1
        self.frag = False  # an IPv4/IPv6 fragment: counted, not reassembled, no L4 decode past the first
        self.sport = 0
        self.dport = 0
        self.tcp_flags = 0
        self.tcp_seq = 0
        self.tcp_ack = 0
        self.tcp_window = 0
        self.tcp_opts_off = 0
        self.tcp_opts_len = 0
        self.icmp_type = -1
        self.icmp_code = -1
        self.payload_off = 0
        self.payload_len = 0
        self.tunnel = 0  # encapsulations removed (GRE, ERSPAN, VXLAN, GTP-U, IP-in-IP)

    @property
    def payload(self) -> bytes:
        """The transport payload (a copy; take it only for packets worth parsing)."""
        return self.data[self.payload_off : self.payload_off + self.payload_len]

    @property
    def tcp_options(self) -> bytes:
        return self.data[self.tcp_opts_off : self.tcp_opts_off + self.tcp_opts_len]


# Text forms of recently seen addresses: a site's events name the same few thousand hosts over and over.
_IP_TEXT: dict[bytes, str] = {}
_TEXT_MAX = 65536  # entries in each of the address and MAC text caches


def ip_text(addr: bytes) -> str:
    """Text form of a 4- or 16-byte address ("" when there is none)."""
    text = _IP_TEXT.get(addr)
    if text is not None:
        return text
    if len(addr) == 4:
        text = f"{addr[0]}.{addr[1]}.{addr[2]}.{addr[3]}"
    elif len(addr) == 16:
        text = str(ipaddress.IPv6Address(addr))
    else:
        return ""
    if len(_IP_TEXT) >= _TEXT_MAX:
        _IP_TEXT.clear()
    _IP_TEXT[bytes(addr)] = text
    return text


_MAC_TEXT: dict[bytes, str] = {}


def mac_text(mac: bytes) -> str:
    """aa:bb:cc:dd:ee:ff form ("" when there is none); remembered like addresses (every event names two)."""
    text = _MAC_TEXT.get(mac)
    if text is not None:
        return text
    if not mac:
        return ""
    text = mac.hex(":")
    if len(_MAC_TEXT) >= _TEXT_MAX:
        _MAC_TEXT.clear()
    _MAC_TEXT[bytes(mac)] = text
    return text


def _flags_text(flags: int) -> str:
    out = []
    for bit, ch in ((SYN, "S"), (ACK, "A"), (FIN, "F"), (PSH, "P"), (RST, "R"), (URG, "U"), (ECE, "E"), (CWR, "C")):
        if flags & bit:
            out.append(ch)
    return "".join(out)


_FLAGS_TEXT = [_flags_text(i) for i in range(256)]


def tcp_flags_text(flags: int) -> str:
    """Flags in the fixed order S A F P R U E C, as `SAFPR` strings in flow events."""
    return _FLAGS_TEXT[flags & 0xFF]
