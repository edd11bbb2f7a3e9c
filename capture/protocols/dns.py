"""DNS, mDNS and LLMNR messages (RFC 1035, RFC 6762, RFC 4795): one sans-IO parser.

Strategy: one pass over the message with `struct.unpack_from` at offsets, names read by the
shared compression-safe reader with a per-message cache (mDNS answers repeat suffixes such as
`_tcp.local`). Record data of the types that identify devices (A, AAAA, PTR, CNAME, TXT, SRV,
...) is turned into presentation text; other types use the RFC 3597 generic form. For mDNS the
top bit of the class is a flag (unicast-response in questions, cache-flush in records) and is
masked off. Questions and records are NamedTuples (immutable, and three times cheaper to build
than frozen dataclasses, which matters on DNS-heavy LANs); the message is a frozen dataclass.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from capture.errors import DecodeError
from capture.protocols._util import boundary, ipv4_text, ipv6_text, read_name

# RFC 1035 §4.1.1: the header is 12 octets.
HEADER_LEN = 12
# Smallest question: root name (1) + type (2) + class (2); smallest record adds TTL (4) and
# RDLENGTH (2). Counts that cannot fit in the payload are rejected before any work.
MIN_QUESTION_LEN = 5
MIN_RECORD_LEN = 11
# RFC 1035 §4.2.2: a TCP message carries a 2-octet length prefix.
TCP_PREFIX_LEN = 2
# RFC 6762 §5.4 and §10.2: top bit of the class field in mDNS.
MDNS_CLASS_FLAG = 0x8000

TYPE_A = 1
TYPE_NS = 2
TYPE_CNAME = 5
TYPE_SOA = 6
TYPE_PTR = 12
TYPE_HINFO = 13
TYPE_MX = 15
TYPE_TXT = 16
TYPE_AAAA = 28
TYPE_SRV = 33
TYPE_DNAME = 39
TYPE_OPT = 41
TYPE_NSEC = 47

_NAME_TYPES = frozenset({TYPE_NS, TYPE_CNAME, TYPE_PTR, TYPE_DNAME})

_dotted = ".".join  # presentation of a label tuple; the root is ""
_HEADER = struct.Struct("!6H")
_QTAIL = struct.Struct("!2H")
_RTAIL = struct.Struct("!HHIH")
_H = struct.Struct("!H")
_SRV = struct.Struct("!3H")
_SOA = struct.Struct("!5I")


class DnsQuestion(NamedTuple):
    name: str
    qtype: int
    qclass: int
    unicast_response: bool


class DnsRecord(NamedTuple):
    name: str
    rtype: int
    rclass: int
    ttl: int
    data: str
    cache_flush: bool
    txt: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "type": self.rtype, "ttl": self.ttl, "data": self.data}


# Not frozen, though nothing changes it once built: a frozen dataclass sets each field through
# object.__setattr__, which made building one per packet or message a visible cost (docs/performance.md).
@dataclass(slots=True)
class DnsMessage:
    proto_name: str
    id: int
    flags: int
    questions: tuple[DnsQuestion, ...]
    answers: tuple[DnsRecord, ...]
    authorities: tuple[DnsRecord, ...]
    additionals: tuple[DnsRecord, ...]

    @property
    def response(self) -> bool:
        return bool(self.flags & 0x8000)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def rcode(self) -> int:
        return self.flags & 0xF

    def fields(self) -> dict[str, object]:
        """The `dns` event's own fields (docs/events.md)."""
        first = self.questions[0] if self.questions else None
        return {
            "proto_name": self.proto_name,
            "id": self.id,
            "response": self.response,
            "query": first.name if first else None,
            "qtype": first.qtype if first else None,
            "queries": [q.name for q in self.questions],
            "rcode": self.rcode,
            "answers": [r.as_dict() for r in self.answers],
            # mDNS responders put SRV/TXT/A records here (RFC 6763 §12); EDNS OPT (type 41) is not data.
            "additionals": [r.as_dict() for r in self.additionals if r.rtype != 41],
        }


def _character_strings(buf: bytes, off: int, end: int) -> tuple[str, ...]:
    out: list[str] = []
    while off < end:
        n = buf[off]
        stop = off + 1 + n
        if stop > end:
            raise DecodeError("dns.bad_rdata", "character-string runs past the record", off)
        out.append(buf[off + 1 : stop].decode("utf-8", "replace"))
        off = stop
    return tuple(out)


def _quoted(strings: tuple[str, ...]) -> str:
    return " ".join('"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"' for s in strings)


def _rdata(
    buf: bytes, rtype: int, off: int, end: int, proto: str, cache: dict[int, tuple[tuple[str, ...], int]]
) -> tuple[str, tuple[str, ...]]:
    rdlen = end - off
    if rtype == TYPE_A and rdlen == 4:
        return ipv4_text(buf[off:end]), ()
    if rtype == TYPE_AAAA and rdlen == 16:
        return ipv6_text(buf[off:end]), ()
    if rtype in _NAME_TYPES:
        return _dotted(read_name(buf, off, proto, cache)[0]), ()
    if rtype == TYPE_TXT:
        strings = _character_strings(buf, off, end)
        return _quoted(strings), strings
    if rtype == TYPE_SRV:
        prio, weight, port = _SRV.unpack_from(buf, off)
        target = _dotted(read_name(buf, off + 6, proto, cache)[0])
        return f"{prio} {weight} {port} {target}", ()
    if rtype == TYPE_MX:
        pref = _H.unpack_from(buf, off)[0]
        return f"{pref} {_dotted(read_name(buf, off + 2, proto, cache)[0])}", ()
    if rtype == TYPE_HINFO:
        strings = _character_strings(buf, off, end)
        return _quoted(strings), strings
    if rtype == TYPE_SOA:
        mname, moff = read_name(buf, off, proto, cache)
        rname, roff = read_name(buf, moff, proto, cache)
        if roff + _SOA.size > end:
            raise DecodeError(f"{proto}.bad_rdata", "SOA numbers run past the record", roff)
        nums = _SOA.unpack_from(buf, roff)
        return " ".join([_dotted(mname), _dotted(rname), *map(str, nums)]), ()
    if rtype == TYPE_NSEC:
        return _dotted(read_name(buf, off, proto, cache)[0]), ()
    # RFC 3597 §5: generic presentation of unknown record data.
    return f"\\# {rdlen} {buf[off:end].hex()}" if rdlen else "\\# 0", ()


def _records(
    buf: bytes, off: int, count: int, proto: str, mdns: bool, cache: dict[int, tuple[tuple[str, ...], int]]
) -> tuple[tuple[DnsRecord, ...], int]:
    out: list[DnsRecord] = []
    size = len(buf)
    append = out.append
    for _ in range(count):
        labels, off = read_name(buf, off, proto, cache)
        rtype, rclass, ttl, rdlen = _RTAIL.unpack_from(buf, off)
        off += 10
        end = off + rdlen
        if end > size:
            raise DecodeError(f"{proto}.truncated", f"record data of {rdlen} bytes runs past the end", off)
        flush = False
        if mdns and rtype != TYPE_OPT and rclass & MDNS_CLASS_FLAG:
            flush = True
            rclass &= ~MDNS_CLASS_FLAG
        data: str = ""
        txt: tuple[str, ...] = ()
        if rtype != TYPE_OPT:
            data, txt = _rdata(buf, rtype, off, end, proto, cache)
        append(DnsRecord(_dotted(labels), rtype, rclass, ttl, data, flush, txt))
        off = end
    return tuple(out), off


@boundary("dns")
def parse_dns(payload: bytes, proto_name: str = "dns") -> DnsMessage:
    """Parse a DNS, mDNS (`proto_name="mdns"`) or LLMNR (`"llmnr"`) message from a UDP payload."""
    buf = bytes(payload)
    size = len(buf)
    if size < HEADER_LEN:
        raise DecodeError("dns.truncated", f"{size} bytes, header needs {HEADER_LEN}", 0)
    ident, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(buf, 0)
    if qdcount * MIN_QUESTION_LEN + (ancount + nscount + arcount) * MIN_RECORD_LEN > size - HEADER_LEN:
        raise DecodeError(
            "dns.bad_counts",
            f"counts {qdcount}/{ancount}/{nscount}/{arcount} cannot fit in {size} bytes",
            4,
        )
    mdns = proto_name == "mdns"
    cache: dict[int, tuple[tuple[str, ...], int]] = {}
    questions: list[DnsQuestion] = []
    off = HEADER_LEN
    for _ in range(qdcount):
        labels, off = read_name(buf, off, "dns", cache)
        qtype, qclass = _QTAIL.unpack_from(buf, off)
        off += 4
        unicast = False
        if mdns and qclass & MDNS_CLASS_FLAG:
            unicast = True
            qclass &= ~MDNS_CLASS_FLAG
        questions.append(DnsQuestion(_dotted(labels), qtype, qclass, unicast))
    answers, off = _records(buf, off, ancount, "dns", mdns, cache)
    authorities, off = _records(buf, off, nscount, "dns", mdns, cache)
    additionals, off = _records(buf, off, arcount, "dns", mdns, cache)
    return DnsMessage(proto_name, ident, flags, tuple(questions), answers, authorities, additionals)


def parse_dns_tcp(payload: bytes, proto_name: str = "dns") -> DnsMessage:
    """Parse the first message of a DNS-over-TCP stream (2-octet length prefix, RFC 1035 §4.2.2)."""
    if len(payload) < TCP_PREFIX_LEN:
        raise DecodeError("dns.truncated", "no TCP length prefix", 0)
    length = (payload[0] << 8) | payload[1]
    if len(payload) < TCP_PREFIX_LEN + length:
        raise DecodeError("dns.truncated", f"TCP message of {length} bytes, {len(payload) - TCP_PREFIX_LEN} present", 0)
    return parse_dns(payload[TCP_PREFIX_LEN : TCP_PREFIX_LEN + length], proto_name)
