"""NetBIOS Name Service messages (RFC 1002 §4.2) on UDP port 137.

Strategy: NBNS reuses the DNS header and name format; the first label is the NetBIOS name in
"first-level encoding" (RFC 1001 §14.1: 16 octets, each split into two nibbles written as
'A' + nibble, 32 characters). The 16th octet is the suffix naming the service; the other 15
are the name padded with spaces. The subject name is the first question's (queries,
registrations) or else the first answer's (responses).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from capture.errors import DecodeError
from capture.protocols._util import boundary, read_name

# RFC 1002 §4.2.1.1: the same 12-octet header as DNS.
HEADER_LEN = 12
# RFC 1001 §14.1: 16 octets encoded as 32 characters 'A'..'P'.
ENCODED_LEN = 32
NETBIOS_NAME_LEN = 16
_A = ord("A")

_HEADER = struct.Struct("!6H")


@dataclass(frozen=True, slots=True)
class NbnsMessage:
    id: int
    flags: int
    raw_name: bytes
    name: str
    suffix: int
    scope: str
    qdcount: int
    ancount: int

    @property
    def response(self) -> bool:
        return bool(self.flags & 0x8000)

    @property
    def opcode(self) -> int:
        """RFC 1002 §4.2.1.1: 0 query, 5 registration, 6 release, 7 WACK, 8 refresh."""
        return (self.flags >> 11) & 0xF

    def fields(self) -> dict[str, object]:
        """The `nbns` event's own fields (docs/events.md)."""
        return {"name": self.name, "suffix": self.suffix, "response": self.response, "opcode": self.opcode}


def decode_netbios_name(label: bytes, off: int = 0) -> bytes:
    """Decode a first-level encoded label into the 16 raw octets (15 name octets, suffix)."""
    if len(label) != ENCODED_LEN:
        raise DecodeError("nbns.bad_name", f"encoded name of {len(label)} characters, not 32", off)
    raw = bytearray(NETBIOS_NAME_LEN)
    for i in range(NETBIOS_NAME_LEN):
        hi = label[2 * i] - _A
        lo = label[2 * i + 1] - _A
        if not (0 <= hi < 16 and 0 <= lo < 16):
            raise DecodeError("nbns.bad_name", f"character outside 'A'..'P' in {label!r}", off)
        raw[i] = (hi << 4) | lo
    return bytes(raw)


@boundary("nbns")
def parse_nbns(payload: bytes) -> NbnsMessage:
    """Parse an NBNS message (query, registration, release, refresh or response)."""
    buf = bytes(payload)
    if len(buf) < HEADER_LEN:
        raise DecodeError("nbns.truncated", f"{len(buf)} bytes, header needs {HEADER_LEN}", 0)
    ident, flags, qdcount, ancount, _nscount, _arcount = _HEADER.unpack_from(buf, 0)
    if qdcount == 0 and ancount == 0:
        raise DecodeError("nbns.no_name", "no question and no answer", 4)
    off = HEADER_LEN
    size = len(buf)
    length = buf[off]
    if length >= 0x40 or off + 1 + length > size:
        raise DecodeError("nbns.bad_name", f"first label length 0x{length:02x}", off)
    raw = decode_netbios_name(buf[off + 1 : off + 1 + length], off)
    # RFC 1002 §4.1: names are padded with spaces; the wildcard "*" is padded with NULs.
    name = raw[:15].rstrip(b" \x00").decode("utf-8", "replace")
    labels, _ = read_name(buf, off, "nbns", {})
    scope = ".".join(labels[1:])
    return NbnsMessage(ident, flags, raw[:15], name, raw[15], scope, qdcount, ancount)
