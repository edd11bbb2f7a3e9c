"""Sans-IO L2-L4 decoder: a frame's bytes in, a `Packet` of offsets out.

Strategy: one pass over the headers with `struct.unpack_from` on the frame's own bytes; no
copies, no per-layer objects. Link types, ethertypes and IPv6 extension headers are dispatched
through tables built here, once. Anything malformed raises `DecodeError` with a reason slug that
the pipeline counts in `stats`; a capture cut short by its snaplen is decoded as far as it goes.
"""

from __future__ import annotations

import struct

from capture.errors import DECODE_EXCEPTIONS, DecodeError
from capture.frame import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_ALIASES,
)
from capture.packet import PROTO_ICMP, PROTO_ICMP6, PROTO_TCP, PROTO_UDP, Packet

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_IPV6 = 0x86DD
ETH_VLAN_TYPES = frozenset((0x8100, 0x88A8, 0x9100, 0x9200))

# IEEE 802.1Q allows stacking; real networks use at most two (QinQ). Eight bounds hostile chains.
MAX_VLAN_TAGS = 8
# RFC 8200 puts no limit on extension headers; RFC 7112 and Linux (IP6_MAX_EXT_HDRS_CNT 16)
# bound it in practice. More than 16 is counted as hostile.
MAX_IPV6_EXT_HEADERS = 16

_IPV6_EXT = frozenset((0, 43, 60, 135, 139, 140))  # hop-by-hop, routing, dst opts, mobility, HIP, shim6
_IPV6_FRAG = 44
_IPV6_AH = 51
_IPV6_NO_NEXT = 59

_H = struct.Struct("!H").unpack_from
_HH = struct.Struct("!HH").unpack_from
_TCP = struct.Struct("!HHIIBBH").unpack_from
_UDP = struct.Struct("!HHH").unpack_from
_IP4 = struct.Struct("!BBHHHBB").unpack_from


def decode(ts: float, linktype: int, data: bytes) -> Packet:
    """Decode one frame. Raises DecodeError for malformed headers."""
    pkt = Packet(ts, linktype, data)
    try:
        # Fast path for the common frame: untagged Ethernet carrying IPv4.
        if linktype == LINKTYPE_ETHERNET and len(data) >= 34 and data[12] == 8 and data[13] == 0:
            pkt.dst_mac = data[0:6]
            pkt.src_mac = data[6:12]
            pkt.ethertype = ETH_IPV4
            _decode_ipv4(pkt, data, 14)
        else:
            _decode_link(pkt, linktype, data)
    except DecodeError:
        raise
    except DECODE_EXCEPTIONS as e:
        raise DecodeError("truncated", type(e).__name__) from None
    return pkt


def _decode_link(pkt: Packet, linktype: int, data: bytes) -> None:
    n = len(data)
    if linktype == LINKTYPE_ETHERNET:
        _ethernet(pkt, data, 0)
    elif linktype == LINKTYPE_LINUX_SLL:
        if n < 16:
            raise DecodeError("sll.truncated", f"{n} bytes")
        hatype, halen = _HH(data, 2)
        if hatype == 1 and halen == 6:
            pkt.src_mac = data[6:12]
        etype = _H(data, 14)[0]
        off = 16
        if etype in ETH_VLAN_TYPES:
            etype, off = _vlans(pkt, data, etype, off)
        _decode_l3(pkt, etype, data, off)
    elif linktype == LINKTYPE_LINUX_SLL2:
        if n < 20:
            raise DecodeError("sll2.truncated", f"{n} bytes")
        etype = _H(data, 0)[0]
        hatype = _H(data, 8)[0]
        halen = data[11]
        if hatype == 1 and halen == 6:
            pkt.src_mac = data[12:18]
        off = 20
        if etype in ETH_VLAN_TYPES:
            etype, off = _vlans(pkt, data, etype, off)
        _decode_l3(pkt, etype, data, off)
    elif linktype == LINKTYPE_RAW or linktype in LINKTYPE_RAW_ALIASES:
        if n < 1:
            raise DecodeError("raw.empty")
        v = data[0] >> 4
        _decode_l3(pkt, ETH_IPV4 if v == 4 else ETH_IPV6 if v == 6 else 0, data, 0)
    elif linktype == LINKTYPE_IPV4:
        _decode_l3(pkt, ETH_IPV4, data, 0)
    elif linktype == LINKTYPE_IPV6:
        _decode_l3(pkt, ETH_IPV6, data, 0)
    elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if n < 4:
            raise DecodeError("null.truncated", f"{n} bytes")
        fam = struct.unpack_from("!I" if linktype == LINKTYPE_LOOP else "<I", data, 0)[0]
        if fam > 0xFFFF:  # NULL is host byte order; a big-endian writer left it swapped
            fam = struct.unpack_from("!I", data, 0)[0]
        etype = ETH_IPV4 if fam == 2 else ETH_IPV6 if fam in (10, 24, 28, 30) else 0
        _decode_l3(pkt, etype, data, 4)
    else:
        raise DecodeError("link.unsupported", f"linktype {linktype}")


def _ethernet(pkt: Packet, data: bytes, off: int) -> None:
    if len(data) < off + 14:
        raise DecodeError("eth.truncated", f"{len(data) - off} bytes", off)
    pkt.dst_mac = data[off : off + 6]
    pkt.src_mac = data[off + 6 : off + 12]
    etype = _H(data, off + 12)[0]
    off += 14
    if etype in ETH_VLAN_TYPES:
        etype, off = _vlans(pkt, data, etype, off)
    if etype < 0x0600:  # 802.3 length field: LLC frames (STP, CDP), no IP
        pkt.ethertype = 0
        return
    _decode_l3(pkt, etype, data, off)


def _vlans(pkt: Packet, data: bytes, etype: int, off: int) -> tuple[int, int]:
    tags: list[int] = []
    while etype in ETH_VLAN_TYPES:
        if len(tags) >= MAX_VLAN_TAGS:
            raise DecodeError("vlan.too_many_tags", f"> {MAX_VLAN_TAGS}")
        if off + 4 > len(data):
            raise DecodeError("vlan.truncated", offset=off)
        tci, etype = _HH(data, off)
        tags.append(tci & 0x0FFF)
        off += 4
    pkt.vlans = tuple(tags)
    return etype, off


def _decode_l3(pkt: Packet, etype: int, data: bytes, off: int) -> None:
    pkt.ethertype = etype
    if etype == ETH_IPV4:
        _decode_ipv4(pkt, data, off)
    elif etype == ETH_IPV6:
        _decode_ipv6(pkt, data, off)
    # ARP and the rest stay L2-only; observers read ARP from pkt.data at ip_off.
    elif etype == ETH_ARP:
        pkt.ip_off = off


def _decode_ipv4(pkt: Packet, data: bytes, off: int) -> None:
    n = len(data)
    if off + 20 > n:
        raise DecodeError("ipv4.truncated", f"{n - off} bytes of header", off)
    vihl, _tos, total, _ident, fragw, ttl, proto = _IP4(data, off)
    if vihl >> 4 != 4:
        raise DecodeError("ipv4.bad_version", str(vihl >> 4), off)
    hl = (vihl & 0x0F) * 4
    if hl < 20:
        raise DecodeError("ipv4.bad_ihl", str(hl), off)
    if total == 0:
        total = n - off  # TSO/GSO capture on the sending host: the NIC fills the length in later
    if total < hl:
        raise DecodeError("ipv4.bad_total_length", f"total {total} < header {hl}", off)
    if off + hl > n:
        raise DecodeError("ipv4.truncated", "options cut", off)
    pkt.ip_version = 4
    pkt.ip_off = off
    pkt.ttl = ttl
    pkt.proto = proto
    pkt.src = data[off + 12 : off + 16]
    pkt.dst = data[off + 16 : off + 20]
    end = off + total
    if end > n:
        end = n  # snaplen cut, or a length beyond the buffer: decode what is there
    pkt.ip_len = end - off
    if fragw & 0x3FFF:  # MF or offset
        pkt.frag = True
        if fragw & 0x1FFF:
            return  # later fragment: no transport header
    _decode_l4(pkt, proto, data, off + hl, end)


def _decode_ipv6(pkt: Packet, data: bytes, off: int) -> None:
    n = len(data)
    if off + 40 > n:
        raise DecodeError("ipv6.truncated", f"{n - off} bytes of header", off)
    if data[off] >> 4 != 6:
        raise DecodeError("ipv6.bad_version", str(data[off] >> 4), off)
    plen = _H(data, off + 4)[0]
    nxt = data[off + 6]
    pkt.ip_version = 6
    pkt.ip_off = off
    pkt.ttl = data[off + 7]
    pkt.src = data[off + 8 : off + 24]
    pkt.dst = data[off + 24 : off + 40]
    end = off + 40 + plen if plen else n  # 0: jumbogram (RFC 2675) or TSO capture
    if end > n:
        end = n
    pkt.ip_len = end - off
    o = off + 40
    count = 0
    while True:
        if nxt in _IPV6_EXT:
            if o + 2 > end:
                raise DecodeError("ipv6.ext_truncated", f"header {nxt}", o)
            size = (data[o + 1] + 1) * 8
        elif nxt == _IPV6_FRAG:
            if o + 8 > end:
                raise DecodeError("ipv6.ext_truncated", "fragment header", o)
            pkt.frag = True
            fragw = _H(data, o + 2)[0]
            if fragw & 0xFFF8:  # later fragment
                pkt.proto = data[o]
                return
            size = 8
        elif nxt == _IPV6_AH:
            if o + 2 > end:
                raise DecodeError("ipv6.ext_truncated", "AH", o)
            size = (data[o + 1] + 2) * 4
        else:
            break
        count += 1
        if count > MAX_IPV6_EXT_HEADERS:
            raise DecodeError("ipv6.too_many_ext_headers", f"> {MAX_IPV6_EXT_HEADERS}", o)
        if o + size > end:
            raise DecodeError("ipv6.ext_truncated", f"header {nxt} length {size}", o)
        nxt = data[o]
        o += size
    pkt.proto = nxt
    if nxt == _IPV6_NO_NEXT:
        return
    _decode_l4(pkt, nxt, data, o, end)


def _decode_l4(pkt: Packet, proto: int, data: bytes, off: int, end: int) -> None:
    pkt.l4_off = off
    if proto in _TUNNEL_PROTOS:
        _tunnel_ip(pkt, proto, data[:end], off)
        return
    if proto == PROTO_TCP:
        if off + 20 > end:
            raise DecodeError("tcp.truncated", f"{end - off} bytes of header", off)
        sport, dport, seq, ack, doff, flags, win = _TCP(data, off)
        hl = (doff >> 4) * 4
        if hl < 20:
            raise DecodeError("tcp.bad_offset", str(hl), off)
        if off + hl > end:
            raise DecodeError("tcp.bad_offset", f"header {hl} past packet end", off)
        pkt.sport = sport
        pkt.dport = dport
        pkt.tcp_seq = seq
        pkt.tcp_ack = ack
        pkt.tcp_flags = flags
        pkt.tcp_window = win
        pkt.tcp_opts_off = off + 20
        pkt.tcp_opts_len = hl - 20
        pkt.payload_off = off + hl
        pkt.payload_len = end - off - hl
    elif proto == PROTO_UDP:
        if off + 8 > end:
            raise DecodeError("udp.truncated", f"{end - off} bytes of header", off)
        sport, dport, ulen = _UDP(data, off)
        if ulen < 8 and ulen != 0:  # 0 is legal for IPv6 jumbograms (RFC 2675)
            raise DecodeError("udp.bad_length", str(ulen), off)
        pkt.sport = sport
        pkt.dport = dport
        pkt.payload_off = off + 8
        plen = end - off - 8
        if ulen and ulen - 8 < plen:
            plen = ulen - 8
        pkt.payload_len = plen
        if (dport in _UDP_TUNNELS or sport in _UDP_TUNNELS) and plen >= 8:
            _tunnel_udp(pkt, dport if dport in _UDP_TUNNELS else sport, data[: off + 8 + plen], off + 8)
    elif proto == PROTO_ICMP or proto == PROTO_ICMP6:
        if off + 4 > end:
            raise DecodeError("icmp.truncated", f"{end - off} bytes", off)
        pkt.icmp_type = data[off]
        pkt.icmp_code = data[off + 1]
        # Suricata's dsize for ICMP counts what follows the 8-byte header (RFC 792 echo layout).
        pkt.payload_off = min(off + 8, end)
        pkt.payload_len = end - pkt.payload_off
    else:
        pkt.payload_off = off
        pkt.payload_len = end - off


# --- tunnels -----------------------------------------------------------------------------
# Sensors often see mirrored traffic (ERSPAN), overlay networks (VXLAN) or mobile backhaul
# (GTP-U); the devices are inside. Decapsulation restarts the decode at the inner header,
# bounded so that nested tunnels cannot recurse without end.
MAX_TUNNEL_DEPTH = 4
PROTO_GRE = 47
_TUNNEL_PROTOS = frozenset((4, 41, PROTO_GRE))  # IPv4-in-IP (RFC 2003), IPv6-in-IP (RFC 4213), GRE
VXLAN_PORT = 4789  # RFC 7348
GTPU_PORT = 2152  # 3GPP TS 29.281
_UDP_TUNNELS = frozenset((VXLAN_PORT, GTPU_PORT))
_GRE_TEB = 0x6558  # transparent Ethernet bridging
_GRE_ERSPAN2 = 0x88BE
_GRE_ERSPAN3 = 0x22EB


def _inner(pkt: Packet) -> None:
    pkt.tunnel += 1
    if pkt.tunnel > MAX_TUNNEL_DEPTH:
        raise DecodeError("tunnel.too_deep", f"> {MAX_TUNNEL_DEPTH}")
    pkt.frag = False
    pkt.sport = pkt.dport = pkt.tcp_flags = 0
    pkt.icmp_type = pkt.icmp_code = -1
    pkt.payload_off = pkt.payload_len = 0


def _tunnel_ip(pkt: Packet, proto: int, data: bytes, off: int) -> None:
    _inner(pkt)
    if proto == 4:
        _decode_ipv4(pkt, data, off)
    elif proto == 41:
        _decode_ipv6(pkt, data, off)
    else:
        _gre(pkt, data, off)


def _gre(pkt: Packet, data: bytes, off: int) -> None:
    # RFC 2784 / 2890: flags C(checksum) K(key) S(sequence) add 4 bytes each.
    if off + 4 > len(data):
        raise DecodeError("gre.truncated", offset=off)
    flags, ptype = _HH(data, off)
    if flags & 0x0007 > 1:
        raise DecodeError("gre.bad_version", str(flags & 7), off)
    o = off + 4
    if flags & 0x8000:
        o += 4
    if flags & 0x2000:
        o += 4
    if flags & 0x1000:
        o += 4
    if flags & 0x0007 == 1:  # enhanced GRE (PPTP): not a tunnel we look into
        raise DecodeError("gre.unsupported", "PPTP", off)
    if ptype == ETH_IPV4:
        _decode_ipv4(pkt, data, o)
    elif ptype == ETH_IPV6:
        _decode_ipv6(pkt, data, o)
    elif ptype == _GRE_TEB:
        _ethernet(pkt, data, o)
    elif ptype == _GRE_ERSPAN2:
        # ERSPAN type II: 8-byte header; without the S bit there is no header at all (type I).
        _ethernet(pkt, data, o + 8 if flags & 0x1000 else o)
    elif ptype == _GRE_ERSPAN3:
        if o + 12 > len(data):
            raise DecodeError("erspan.truncated", offset=o)
        hl = 12 + (8 if data[o + 11] & 0x01 else 0)  # O bit: optional platform subheader
        _ethernet(pkt, data, o + hl)
    else:
        raise DecodeError("gre.unsupported", f"protocol 0x{ptype:04x}", off)


def _tunnel_udp(pkt: Packet, port: int, data: bytes, off: int) -> None:
    if port == VXLAN_PORT:
        if not data[off] & 0x08:  # I flag: a valid VNI; otherwise not VXLAN
            return
        _inner(pkt)
        _ethernet(pkt, data, off + 8)
        return
    # GTP-U v1: version 1, PT=1, message type 255 (T-PDU) carries user IP packets.
    flags = data[off]
    if flags >> 5 != 1 or not flags & 0x10 or data[off + 1] != 0xFF:
        return
    o = off + 8
    if flags & 0x07:
        if o + 4 > len(data):
            raise DecodeError("gtp.truncated", offset=o)
        nxt = data[o + 3]
        o += 4
        hops = 0
        while nxt:
            if o + 1 > len(data) or hops >= 8:  # TS 29.281 defines a handful of extension types
                raise DecodeError("gtp.bad_extension", offset=o)
            ln = data[o] * 4
            if ln == 0 or o + ln > len(data):
                raise DecodeError("gtp.bad_extension", offset=o)
            nxt = data[o + ln - 1]
            o += ln
            hops += 1
    if o >= len(data):
        return
    v = data[o] >> 4
    _inner(pkt)
    if v == 4:
        _decode_ipv4(pkt, data, o)
    elif v == 6:
        _decode_ipv6(pkt, data, o)
    else:
        raise DecodeError("gtp.bad_inner", f"version {v}", o)
