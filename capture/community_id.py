"""Community ID flow hashing, version 1 (https://github.com/corelight/community-id-spec).

sha1(seed || saddr || daddr || proto || 0 || sport || dport), endpoints ordered so that the
smaller (address, port) comes first; ICMP types map to their reply types so both directions
of an exchange hash alike.
"""

from __future__ import annotations

import binascii
import hashlib
import struct

from capture.packet import PROTO_ICMP, PROTO_ICMP6, PROTO_TCP, PROTO_UDP

# The spec's ICMP type -> counterpart tables (echo, timestamp, info, address mask, router/neighbor
# solicitation, node information "who are you", ...). A type in the table is treated as one end of a
# bidirectional exchange. telemetry/community.py keeps the same tables for the collector (the rooms may
# not import each other); tests/test_community_id_rooms.py holds the two to the same answers.
_ICMP4_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17, 10: 9, 9: 10}
_ICMP6_PAIRS = {
    128: 129,
    129: 128,
    133: 134,
    134: 133,
    135: 136,
    136: 135,
    130: 131,
    131: 130,
    139: 140,
    140: 139,
    144: 145,
    145: 144,
}


_SEED = struct.Struct("!H")
_PORTS = struct.Struct("!BBHH")
_NO_PORTS = struct.Struct("!BB")


def community_id(src: bytes, dst: bytes, proto: int, sport: int, dport: int, seed: int = 0) -> str:
    """Community ID v1 string ("1:<base64 sha1>"). For ICMP, sport/dport are type and code."""
    one_way = False
    if proto in (PROTO_ICMP, PROTO_ICMP6):
        pairs = _ICMP4_PAIRS if proto == PROTO_ICMP else _ICMP6_PAIRS
        itype, icode = sport, dport
        if itype in pairs:
            sport, dport = itype, pairs[itype]
        else:
            sport, dport = itype, icode
            one_way = True
    has_ports = proto in (PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMP6, 132)
    # One-way ICMP messages keep the order they were seen in (reference implementation).
    if not one_way and (src, sport) > (dst, dport):
        src, dst, sport, dport = dst, src, dport, sport
    # One buffer, one digest call: a hash object fed piece by piece costs more than the hashing.
    tail = _PORTS.pack(proto, 0, sport, dport) if has_ports else _NO_PORTS.pack(proto, 0)
    digest = hashlib.sha1(_SEED.pack(seed) + src + dst + tail).digest()
    return "1:" + binascii.b2a_base64(digest, newline=False).decode("ascii")
