"""Community ID v1 flow hash (corelight/community-id-spec), so a collector can restore what agents omit.

Flow summaries leave `community_id` out on the wire (docs/wire.md: 20 random bytes are half the byte
budget); the collector recomputes it from the 5-tuple with this function. Pure: text in, text out.

    sha1(seed:u16 | addr_lo | addr_hi | proto:u8 | 0:u8 | port_lo:u16 | port_hi:u16), base64, "1:" prefix

The endpoint ordering makes both directions hash alike; ICMP/ICMPv6 use type and code as ports, with
request/reply types mapped to each other (the spec's tables) and other types hashed one-way (no swap).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import struct
from typing import Final

PROTO_NUMBERS: Final = {"icmp": 1, "tcp": 6, "udp": 17, "icmp6": 58, "ipv6-icmp": 58, "sctp": 132}
_PORTED: Final = frozenset({1, 6, 17, 58, 132})
# The spec's request/reply equivalences: ICMPv4 (RFC 792, 950, 1256) and ICMPv6 (RFC 4443, 4861, 2710,
# 4620, 6275).
_ICMP4_PAIRS: Final = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMP6_PAIRS: Final = {
    128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135,
    130: 131, 131: 130, 139: 140, 140: 139, 144: 145, 145: 144,
}  # fmt: skip


def community_id(proto: int | str, src: str, sport: int, dst: str, dport: int, seed: int = 0) -> str:
    """Community ID v1 of a flow; `proto` is a number or `tcp`/`udp`/`icmp`/`icmp6`/`sctp`.

    Raises ValueError for an unknown protocol name or an address that is not IPv4/IPv6 text.
    """
    number = proto if isinstance(proto, int) else PROTO_NUMBERS.get(proto.lower())
    if number is None:
        raise ValueError(f"unknown protocol {proto!r}")
    a = ipaddress.ip_address(src).packed
    b = ipaddress.ip_address(dst).packed
    one_way = False
    if number in (1, 58):
        pairs = _ICMP4_PAIRS if number == 1 else _ICMP6_PAIRS
        if sport in pairs:
            dport = pairs[sport]
        else:
            one_way = True
    if not one_way and (b, dport) < (a, sport):
        a, b, sport, dport = b, a, dport, sport
    data = struct.pack("!H", seed) + a + b + struct.pack("!BB", number, 0)
    if number in _PORTED:
        data += struct.pack("!HH", sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")
